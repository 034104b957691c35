"""The `lwr` command line: parse options, call the library, print, map errors to exit codes.

The only module that prints. Exit codes (SPEC §2): 0 ok, 1 error, 2 changes, 3 refused.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from reconciler import __version__, workflow
from reconciler.errors import Cancelled, LwrError, UsageError
from reconciler.model import ChannelName, TenantState
from reconciler.plan import Plan
from reconciler.providers import DEFAULT_TENANT, local_path, open_provider
from reconciler.providers.base import Provider
from reconciler.render import renderer_for

EXIT_CHANGES = 2

tenant_option = click.option(
    "--tenant", "tenant_uri", envvar="LWR_TENANT", default=DEFAULT_TENANT, show_default=True,
    help="Tenant URI: local:PATH (embedded tenant) or lineworks: (env LWR_TENANT).")
state_option = click.option(
    "--state", "state_uri", envvar="LWR_STATE", default=None,
    help="Where lock, journal and audit log live (env LWR_STATE); default: state.db beside "
         "a local tenant, else .lwr/state.db.")
format_option = click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
    show_default=True, help="Output format.")


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def _provider(uri: str) -> Iterator[Provider]:
    provider = open_provider(uri)
    try:
        yield provider
    finally:
        provider.close()


def _state_path(state_uri: str | None, tenant_uri: str) -> Path:
    if state_uri:
        path = local_path(state_uri)
        if path is None:
            raise UsageError(f"unsupported state URI {state_uri!r}: expected local:PATH")
        return path
    tenant_file = local_path(tenant_uri)
    return tenant_file.parent / "state.db" if tenant_file else Path(".lwr/state.db")


@contextmanager
def _store(state_uri: str | None, tenant_uri: str) -> Iterator[Any]:
    from reconciler.store.sqlite import SqliteStateStore

    store = SqliteStateStore(_state_path(state_uri, tenant_uri))
    try:
        yield store
    finally:
        store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lwr")
def cli() -> None:
    """lwr: LINE WORKS external messaging as code (validate, plan, apply)."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--tenant", "tenant_uri", default=None,
              help="Also check members and `tenant:` against this tenant's directory.")
def validate(files: tuple[str, ...], tenant_uri: str | None) -> int:
    """Check desired-state FILES: schema, semantics, and the tenant directory if given."""
    from reconciler.desired import check_against_tenant, load_desired

    failures: list[LwrError] = []
    for file in files:
        try:
            desired = load_desired(file)
            if tenant_uri:
                with _provider(tenant_uri) as provider:
                    check_against_tenant(desired, provider.domain(), provider.directory())
            click.echo(f"{file}: valid")
        except LwrError as e:
            failures.append(e)
            click.echo(f"{file}: invalid\n{e}", err=True)
    if failures:
        return max(e.exit_code for e in failures)
    return 0


def _emit_plan(plan: Plan, fmt: str, out: str | None) -> None:
    if out:
        text = renderer_for("json").render(plan)
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"Saved plan to {out} ({len(plan.changes)} changes).", err=True)
    click.echo(renderer_for(fmt, color=_color()).render(plan), nl=False)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan as JSON for apply.")
@format_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
def plan(file: str, tenant_uri: str, out: str | None, fmt: str, detailed_exitcode: bool) -> int:
    """Read the tenant, diff it with FILE, and print the ordered changes."""
    with _provider(tenant_uri) as provider:
        result = workflow.plan_file(file, provider)
    _emit_plan(result, fmt, out)
    return EXIT_CHANGES if detailed_exitcode and result.changes else 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@format_option
def drift(file: str, tenant_uri: str, fmt: str) -> int:
    """Like plan; exit 2 when the tenant differs from FILE (for scheduled checks)."""
    with _provider(tenant_uri) as provider:
        result = workflow.plan_file(file, provider)
    if fmt == "text" and not result.changes:
        click.echo(f"In sync: {result.tenant} matches {file}.")
        return 0
    _emit_plan(result, fmt, None)
    return EXIT_CHANGES if result.changes else 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--allow-destructive", is_flag=True,
              help="Allow turning channels off and large member removals.")
def apply(file: str, tenant_uri: str, state_uri: str | None, auto_approve: bool,
          allow_destructive: bool) -> int:
    """Plan FILE (or load a saved PLAN.json), confirm, and apply in order."""
    with _provider(tenant_uri) as provider:
        if workflow.is_saved_plan(file):
            the_plan = workflow.load_saved_plan(file)
            workflow.check_saved_plan(the_plan, provider)
        else:
            the_plan = workflow.plan_file(file, provider)
        click.echo(renderer_for("text", color=_color()).render(the_plan), nl=False)
        if not the_plan.changes:
            return 0
        the_plan.raise_if_unsafe(allow_destructive=allow_destructive)
        if not auto_approve:
            _confirm(the_plan)
        with _store(state_uri, tenant_uri) as store, _progress() as on_progress:
            from reconciler.apply import default_actor, partial_result

            try:
                result = workflow.apply_plan(the_plan, provider, store, actor=default_actor(),
                                             allow_destructive=allow_destructive,
                                             on_progress=on_progress)
            except (LwrError, KeyboardInterrupt) as e:
                partial = partial_result(e)
                if partial is not None:
                    failed = f"; stopped at {partial.failed}" if partial.failed else ""
                    click.echo(f"Apply stopped: {len(partial.applied)} of "
                               f"{len(the_plan.changes)} changes applied{failed}. The journal "
                               "is consistent: fix the cause and run apply again to finish.",
                               err=True)
                raise
    recovered = f", {len(result.recovered)} recovered from an interrupted run" \
        if result.recovered else ""
    click.echo(f"Apply complete: {len(result.applied)} changes applied{recovered} "
               f"(run {result.run_id}).")
    return 0


def _confirm(the_plan: Plan) -> None:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation: stdin is not a terminal; "
                         "review the plan and pass --auto-approve")
    answer = click.prompt(
        f"Apply these {len(the_plan.changes)} changes to {the_plan.tenant}? "
        "Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise Cancelled("Apply cancelled; nothing was changed.")


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar with ETA on a terminal; nothing when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("applying", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@cli.command()
@tenant_option
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file, not stdout.")
def export(tenant_uri: str, out: str | None) -> int:
    """Write the tenant's current state as a valid desired-state file."""
    with _provider(tenant_uri) as provider:
        text = workflow.export_yaml(provider)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"Exported to {out}.", err=True)
    else:
        click.echo(text, nl=False)
    return 0


@cli.command()
@tenant_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def show(tenant_uri: str, fmt: str) -> int:
    """Print the tenant's current external-messaging state."""
    with _provider(tenant_uri) as provider:
        state = provider.read()
    if fmt == "json":
        click.echo(json.dumps(workflow.state_json(state), ensure_ascii=False, indent=2))
    else:
        click.echo(_show_text(state, provider.key), nl=False)
    return 0


def _show_text(state: TenantState, key: str, shown: int = 20) -> str:
    lines = [f"Tenant {state.domain} ({key}): {len(state.directory)} members", ""]
    for name in ChannelName:
        ch = state.channels[name]
        lines.append(f"{name.value} — {name.label}: {'on' if ch.enabled else 'off'}")
        lines.append(f"  auto_grant_new_members: {_onoff(ch.auto_grant_new_members)}")
        lines.append(f"  restrict_file_transfer: {_onoff(ch.restrict_file_transfer)}")
        if ch.greeting_enabled is not None:
            lines.append(f"  greeting: {_onoff(ch.greeting_enabled)} "
                         f"{json.dumps(ch.greeting_message or '', ensure_ascii=False)}")
        if ch.all_members:
            lines.append(f"  members: all ({len(ch.members)})")
        else:
            listed = sorted(ch.members)
            more = f", … and {len(listed) - shown} more" if len(listed) > shown else ""
            lines.append(f"  members: {len(listed)} listed"
                         + (f" ({', '.join(listed[:shown])}{more})" if listed else ""))
        lines.append(f"  open rooms with {name.external}: {ch.open_room_total}")
    return "\n".join(lines) + "\n"


def _onoff(value: bool | None) -> str:
    return "on" if value else "off"


@cli.command()
@tenant_option
@state_option
@click.option("--verify", is_flag=True, help="Check the log's hash chain; exit 1 if broken.")
@click.option("--limit", type=int, default=50, show_default=True, help="Newest entries shown.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def audit(tenant_uri: str, state_uri: str | None, verify: bool, limit: int, fmt: str) -> int:
    """What was applied, when, by whom, with what result."""
    with _store(state_uri, tenant_uri) as store:
        if verify:
            result = store.verify_audit()
            if not result.ok:
                click.echo(f"Audit log BROKEN at entry {result.first_bad_seq}: {result.reason}",
                           err=True)
                return 1
            click.echo(f"Audit log OK: {result.checked} entries, hash chain intact.")
            return 0
        key = open_provider_key(tenant_uri)
        entries = store.audit_entries(tenant_key=key, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([_entry_json(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        click.echo("No applied changes recorded for this tenant.")
    for e in entries:
        target = f" {e.target}" if e.target else ""
        error = f" ({e.error})" if e.error else ""
        click.echo(f"{e.at}  {e.actor}  {e.result:<9} {e.channel:<9} {e.action}{target}{error}")
    return 0


def open_provider_key(tenant_uri: str) -> str:
    """The key a tenant's audit entries are filed under, without opening the tenant."""
    path = local_path(tenant_uri)
    return f"local:{path.resolve()}" if path else tenant_uri


def _entry_json(entry: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(entry)


@cli.command()
@tenant_option
@state_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def unlock(tenant_uri: str, state_uri: str | None, yes: bool) -> int:
    """Clear a tenant's apply lock left by a crashed or killed run."""
    key = open_provider_key(tenant_uri)
    with _store(state_uri, tenant_uri) as store:
        if not yes and not click.confirm(f"Clear the apply lock of {key}? Only do this when "
                                         "no apply is running", default=False):
            raise Cancelled("Unlock cancelled.")
        holder = store.unlock(key)
    click.echo(f"Lock cleared (was held by {holder})." if holder else "No lock was held.")
    return 0


@cli.group()
def tenant() -> None:
    """Manage the embedded local tenant: seed a demo, simulate hires and contacts."""


def _local_tenant(tenant_uri: str) -> Any:
    from reconciler.providers.local import LocalTenant

    path = local_path(tenant_uri)
    if path is None:
        raise UsageError("`lwr tenant` commands work on local: tenants only")
    return LocalTenant, path


@tenant.command("init")
@tenant_option
@click.option("--demo", is_flag=True, required=True, help="Seed the demo company.")
@click.option("--members", type=click.IntRange(8, 2_000_000), default=8, show_default=True)
@click.option("--domain", default="example.co.jp", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing tenant file.")
def tenant_init(tenant_uri: str, demo: bool, members: int, domain: str, force: bool) -> int:
    """Create a local tenant seeded with a demo company."""
    from reconciler.providers.local import init_demo

    _, path = _local_tenant(tenant_uri)
    init_demo(path, domain=domain, members=members, force=force).close()
    click.echo(f"Demo tenant {domain} with {members} members created at {path}.")
    return 0


@tenant.command("join")
@tenant_option
@click.argument("email")
@click.option("--name", default=None, help="Display name (UTF-8, e.g. 山田 太郎).")
def tenant_join(tenant_uri: str, email: str, name: str | None) -> int:
    """Simulate a new hire joining the company (auto-grant applies)."""
    cls, path = _local_tenant(tenant_uri)
    t = cls.open(path)
    try:
        t.join(email, name)
    finally:
        t.close()
    click.echo(f"{email} joined.")
    return 0


@tenant.command("contact")
@tenant_option
@click.argument("member")
@click.argument("external")
@click.option("--channel", type=click.Choice([c.value for c in ChannelName]), required=True)
@click.option("--name", default=None, help="The external person's display name.")
def tenant_contact(tenant_uri: str, member: str, external: str, channel: str,
                   name: str | None) -> int:
    """Simulate an external user adding MEMBER (LINE friend / LINE WORKS contact)."""
    cls, path = _local_tenant(tenant_uri)
    t = cls.open(path)
    try:
        result = t.contact(member, external, ChannelName(channel), name)
    finally:
        t.close()
    greeting = " and received the greeting" if result.greeting_sent else ""
    click.echo(f"{external} added {member} on {channel}{greeting} (room {result.room_id}).")
    return 0


@tenant.command("messages")
@tenant_option
@click.option("--search", default=None, help="Only messages containing this text.")
def tenant_messages(tenant_uri: str, search: str | None) -> int:
    """Search message history, hidden rooms included (as Admin Audit does)."""
    cls, path = _local_tenant(tenant_uri)
    t = cls.open(path)
    try:
        rows = t.messages(search=search)
    finally:
        t.close()
    for row in rows:
        hidden = " [hidden]" if row.hidden else ""
        click.echo(f"{row.sent_at}  {row.channel:<9} {row.member} ↔ {row.external}{hidden}  "
                   f"{row.sender}: {row.text}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """Run `lwr` with `argv` and return its exit code; every failure becomes a code."""
    try:
        code = cli.main(args=argv, prog_name="lwr", standalone_mode=False)
    except click.exceptions.Abort:
        return _fail("Aborted.", 1)
    except click.exceptions.ClickException as e:
        e.show()
        return 1  # bad usage is bad input (1); exit 2 means "changes present"
    except LwrError as e:
        return _fail(str(e) if str(e).startswith("refused") else f"Error: {e}", e.exit_code)
    except KeyboardInterrupt:
        return _fail("Interrupted.", 130)
    except BrokenPipeError:
        return 1  # a closed pipe (`| head`) is not worth a traceback
    except Exception as e:  # the last line of defence: never a traceback for users
        if os.environ.get("LWR_DEBUG"):
            raise
        return _fail(f"Internal error: {type(e).__name__}: {e}\n(set LWR_DEBUG=1 for details "
                     "and please report it)", 1)
    return code if isinstance(code, int) else 0


def _fail(message: str, code: int) -> int:
    click.echo(message, err=True)
    return code


def main() -> None:
    """Console-script entry point."""
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes again at exit; point stdout at devnull so that cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)

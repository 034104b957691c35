"""The `lwr` command line: parse options, call the library, print, map errors to exit codes.

The only module that prints. Exit codes (SPEC §2): 0 ok, 1 error, 2 changes, 3 refused.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import __version__, workflow
from reconciler.errors import Cancelled, LwrError, UsageError
from reconciler.manual import AttestingProvider, ManualMode, ManualStep, checklist, label, split
from reconciler.model import ChannelName, TenantState
from reconciler.plan import Plan
from reconciler.providers import DEFAULT_TENANT, local_path, open_provider
from reconciler.providers.base import Provider
from reconciler.render import renderer_for
from reconciler.store import StateLocation
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.store.base import LockHolder, StateStore

EXIT_CHANGES = 2

tenant_option = click.option(
    "--tenant", "tenant_uri", envvar="LWR_TENANT", default=DEFAULT_TENANT, show_default=True,
    help="Tenant URI: local:PATH (embedded tenant) or lineworks: (env LWR_TENANT).")
state_option = click.option(
    "--state", "state_uri", envvar="LWR_STATE", default=None,
    help="Where lock, journal, audit log and attested state live (env LWR_STATE): "
         "local:PATH (SQLite) or postgresql://USER@HOST/DB[?schema=NAME] (shared by every "
         "runner); default: state.db beside a local tenant, else .lwr/state.db.")
state_tenant_option = click.option(
    "--tenant", "tenant_uri", envvar="LWR_TENANT", default=DEFAULT_TENANT, show_default=True,
    help="Only used to find the default state store (state.db beside a local tenant).")
format_option = click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
    show_default=True, help="Output format.")
markdown_dir_option = click.option(
    "--markdown-dir", type=click.Path(file_okay=False), default=None,
    help="Also write the markdown rendering to DIR/part-1.md, part-2.md, … (each under "
         "65,000 characters: one pull-request comment each).")


def fleet_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--parallel and --fail-fast, for a directory of desired files (reconciler.fleet)."""
    command = click.option(
        "--fail-fast", is_flag=True,
        help="With a directory: start no further tenant once one fails.")(command)
    return click.option(
        "--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
        help="With a directory: how many tenants run at once.")(command)


def policy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--policy-dir (repeatable) and --no-default-policies (SPEC §4)."""
    command = click.option(
        "--no-default-policies", is_flag=True,
        help="Do not check the policies shipped with lwr (policies/defaults.yaml).")(command)
    return click.option(
        "--policy-dir", "policy_dirs", multiple=True, type=click.Path(file_okay=False),
        help="Also check the rules in DIR/*.yaml (repeatable); a rule with the id of a shipped "
             "one replaces it.")(command)


def _policies(policy_dirs: tuple[str, ...], no_defaults: bool) -> tuple[PolicyRule, ...]:
    """Load the rules first: a broken policy file fails before the tenant is read."""
    from reconciler.policy import load_policies

    return load_policies(policy_dirs, defaults=not no_defaults)


def _echo_policy(report: PolicyReport) -> None:
    """Findings on stderr, for formats whose stdout is a document (JSON)."""
    for finding in report.findings:
        click.echo("Policy " + "\n".join(finding.lines()), err=True)
    for note in report.notes:
        click.echo(f"Policy note: {note}", err=True)


def _write_markdown_parts(directory: str, parts: list[str]) -> None:
    """DIR/part-N.md for each part; part files of an earlier, longer rendering are removed."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.md"):
        old.unlink()
    for i, part in enumerate(parts, 1):
        (folder / f"part-{i}.md").write_text(part, encoding="utf-8")
    click.echo(f"Wrote {len(parts)} markdown part(s) to {folder}/.", err=True)


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def _provider(uri: str, state_uri: str | None = None) -> Iterator[Provider]:
    provider = open_provider(uri, state_uri)
    try:
        yield provider
    finally:
        provider.close()


def _state(state_uri: str | None, tenant_uri: str) -> StateLocation:
    return StateLocation.resolve(state_uri, tenant_uri)


@contextmanager
def _store(state_uri: str | None, tenant_uri: str) -> Iterator[StateStore]:
    store = _state(state_uri, tenant_uri).open()
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


def _emit_plan(plan: Plan, fmt: str, out: str | None, policy: PolicyReport | None = None,
               markdown_dir: str | None = None) -> None:
    if out:
        text = renderer_for("json").render(plan)
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"Saved plan to {out} ({len(plan.changes)} changes).", err=True)
    if markdown_dir:
        from reconciler.render.markdown import PlanMarkdown

        _write_markdown_parts(markdown_dir, PlanMarkdown(policy=policy).render_parts(plan))
    click.echo(renderer_for(fmt, color=_color(), policy=policy).render(plan), nl=False)
    if fmt == "json" and policy is not None:
        _echo_policy(policy)


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan as JSON for apply.")
@format_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@policy_options
@markdown_dir_option
@fleet_options
@state_option
def plan(file: str, tenant_uri: str, out: str | None, fmt: str, detailed_exitcode: bool,
         policy_dirs: tuple[str, ...], no_default_policies: bool,
         markdown_dir: str | None, parallel: int, fail_fast: bool, state_uri: str | None) -> int:
    """Read the tenant, diff it with FILE, check policies, and print the ordered changes.

    FILE may be a directory of desired files, one a tenant (see `lwr plan --help`, README
    "Many tenants"): each goes to its `target:` URI, else to --tenant with {tenant} replaced.
    """
    from reconciler.policy import evaluate

    rules = _policies(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        if out or markdown_dir:
            raise UsageError("--out and --markdown-dir take a single desired file, not a "
                             "directory")
        from reconciler import fleet

        results = fleet.run_fleet(file, fleet.FleetOptions(
            tenant_template=tenant_uri, rules=rules, parallel=parallel, fail_fast=fail_fast,
            state_uri=state_uri))
        return _emit_fleet(results, fmt, detailed_exitcode)
    with _provider(tenant_uri, state_uri) as provider:
        planned = workflow.plan_desired(file, provider)
    policy = evaluate(rules, desired=planned.desired, plan=planned.plan)
    if out and policy.denied:
        click.echo(f"Not saving {out}: policy denies this plan.", err=True)
        out = None  # a denied plan is shown for review, never handed to apply
    _emit_plan(planned.plan, fmt, out, policy, markdown_dir)
    policy.raise_if_denied()
    return EXIT_CHANGES if detailed_exitcode and planned.plan.changes else 0


def _emit_fleet(results: Any, fmt: str, detailed_exitcode: bool) -> int:
    """Print a directory's results (reconciler.fleet) and return the aggregate exit code."""
    from reconciler import fleet

    code = fleet.exit_code(results, detailed=detailed_exitcode)
    if fmt == "json":
        click.echo(fleet.render_json(results, code), nl=False)
    elif fmt == "markdown":
        click.echo(fleet.render_markdown(results), nl=False)
    else:
        click.echo(fleet.render_text(results, color=_color()), nl=False)
    return code


@cli.command("show-plan")
@click.argument("plan_file", type=click.Path(dir_okay=False))
@format_option
@click.option("--tenant", "tenant_uri", default=None,
              help="Also check the plan against this tenant (read only): exit 3 when apply "
                   "would refuse it (stale, another tenant, applied already).")
@state_option
@markdown_dir_option
def show_plan(plan_file: str, fmt: str, tenant_uri: str | None, state_uri: str | None,
              markdown_dir: str | None) -> int:
    """Render a saved PLAN_FILE without touching the tenant (unless --tenant is given)."""
    the_plan = workflow.load_saved_plan(plan_file)
    _emit_plan(the_plan, fmt, None, None, markdown_dir)
    if tenant_uri is None:
        return 0
    with _provider(tenant_uri, state_uri) as provider:
        if _state(state_uri, tenant_uri).exists:  # none yet: nothing was applied through it
            with _store(state_uri, tenant_uri) as store:
                workflow.check_saved_plan(the_plan, provider, store)
        else:
            workflow.check_saved_plan(the_plan, provider)
    click.echo(f"Up to date: {the_plan.tenant} is as it was when the plan was made "
               f"({the_plan.created_at or 'unknown time'}); apply would accept it.", err=True)
    return 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@format_option
@policy_options
@markdown_dir_option
@state_option
def drift(file: str, tenant_uri: str, fmt: str, policy_dirs: tuple[str, ...],
          no_default_policies: bool, markdown_dir: str | None, state_uri: str | None) -> int:
    """Report every setting and list where the tenant differs from FILE: exit 0 in sync,
    2 drifted, 1 error (a failed tenant read included), 3 policy deny."""
    from reconciler.drift import drift_report
    from reconciler.policy import evaluate
    from reconciler.render import drift_renderer_for

    rules = _policies(policy_dirs, no_default_policies)
    with _provider(tenant_uri, state_uri) as provider:
        planned = workflow.plan_desired(file, provider)
    policy = evaluate(rules, desired=planned.desired, plan=planned.plan)
    report = drift_report(planned.desired, planned.current, planned.plan)
    if markdown_dir:
        from reconciler.render.markdown import DriftMarkdown

        _write_markdown_parts(markdown_dir, DriftMarkdown(policy=policy).render_parts(report))
    click.echo(drift_renderer_for(fmt, color=_color(), policy=policy).render(report), nl=False)
    if fmt == "json":
        _echo_policy(policy)
    policy.raise_if_denied()
    return 0 if report.in_sync else EXIT_CHANGES


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--allow-destructive", is_flag=True,
              help="Allow turning channels off and large member removals.")
@policy_options
@click.option("--manual", "manual", type=click.Choice(["ask", "attested", "skip"]),
              default=None,
              help="Manual steps (settings with no public API): ask = wait for the admin to "
                   "confirm each (default on a terminal); attested = they are done already; "
                   "skip = leave them, and what depends on them, for the next plan. Without "
                   "a terminal and without this option, apply stops before them (exit 3).")
@fleet_options
def apply(file: str, tenant_uri: str, state_uri: str | None, auto_approve: bool,
          allow_destructive: bool, policy_dirs: tuple[str, ...],
          no_default_policies: bool, manual: str | None, parallel: int,
          fail_fast: bool) -> int:
    """Plan FILE (or load a saved PLAN.json), check policies, confirm, and apply in order.

    FILE may be a directory of desired files, one a tenant (needs --auto-approve).
    """
    from reconciler.policy import evaluate

    rules = _policies(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        return _apply_dir(file, tenant_uri, state_uri, auto_approve, allow_destructive, rules,
                          manual, parallel, fail_fast)
    saved = workflow.is_saved_plan(file)
    with _provider(tenant_uri, state_uri) as provider:
        if saved:
            the_plan = workflow.load_saved_plan(file)
            with _store(state_uri, tenant_uri) as store:  # refuse a replay before showing it
                workflow.check_saved_plan(the_plan, provider, store)
            desired = workflow.saved_plan_desired(the_plan)
        else:
            planned = workflow.plan_desired(file, provider)
            the_plan, desired = planned.plan, planned.desired
        policy = evaluate(rules, desired=desired, plan=the_plan)
        click.echo(renderer_for("text", color=_color(), policy=policy).render(the_plan),
                   nl=False)
        policy.raise_if_denied()
        if not the_plan.changes:
            _settle_journal(state_uri, tenant_uri, provider, the_plan.tenant)
            return 0
        the_plan.raise_if_unsafe(allow_destructive=allow_destructive)
        mode = _manual_mode(manual)
        click.echo(checklist(the_plan.changes), nl=False)
        if not auto_approve:
            _confirm(the_plan)
        with _store(state_uri, tenant_uri) as store, \
                _progress(enabled=mode != "ask") as on_progress:
            from reconciler.apply import default_actor, partial_result

            try:
                result = workflow.apply_plan(the_plan, provider, store, actor=default_actor(),
                                             allow_destructive=allow_destructive,
                                             on_progress=on_progress, saved=saved,
                                             manual=mode, on_manual=_ask_manual)
            except (LwrError, KeyboardInterrupt) as e:
                partial = partial_result(e) or getattr(e, "result", None)
                if partial is not None:
                    _echo_takeover(partial)
                    click.echo(_stopped_message(e, partial, len(the_plan.changes)), err=True)
                raise
    _echo_takeover(result)
    recovered = f", {len(result.recovered)} recovered from an interrupted run" \
        if result.recovered else ""
    click.echo(f"Apply complete: {len(result.applied)} changes applied{recovered} "
               f"(run {result.run_id}).")
    if mode == "skip" and (held := split(the_plan.changes, "skip").held):
        click.echo(f"Left for the next plan: {len(held)} change(s), manual steps and what "
                   "depends on them (tighten before loosen).")
    return 0


def _apply_dir(directory: str, tenant_uri: str, state_uri: str | None, auto_approve: bool,
               allow_destructive: bool, rules: tuple[PolicyRule, ...], manual: str | None,
               parallel: int, fail_fast: bool) -> int:
    """`lwr apply DIR`: every tenant of the directory, without prompts (reconciler.fleet)."""
    from reconciler import fleet
    from reconciler.apply import default_actor
    if not auto_approve:
        raise UsageError("applying a directory asks no questions: review `lwr plan "
                         f"{directory}` and pass --auto-approve")
    if manual == "ask":
        raise UsageError("--manual=ask is for a single file; use --manual=attested or "
                         "--manual=skip with a directory")
    mode: ManualMode = "attested" if manual == "attested" else \
        "skip" if manual == "skip" else "stop"

    results = fleet.run_fleet(directory, fleet.FleetOptions(
        tenant_template=tenant_uri, rules=rules, apply=True,
        allow_destructive=allow_destructive, manual=mode, parallel=parallel,
        fail_fast=fail_fast, actor=default_actor(), state_uri=state_uri))
    return _emit_fleet(results, "text", False)


def _manual_mode(option: str | None) -> ManualMode:
    """--manual as given; else ask on a terminal, stop before manual steps without one."""
    if option is None:
        return "ask" if sys.stdin.isatty() else "stop"
    if option == "ask" and not sys.stdin.isatty():
        raise UsageError("--manual=ask needs a terminal to answer on; use --manual=attested "
                         "or --manual=skip in a pipeline")
    return "ask" if option == "ask" else "attested" if option == "attested" else "skip"


def _ask_manual(step: ManualStep) -> bool:
    """Show one manual step and wait until the admin says it is done (or stops)."""
    click.echo(f"\nManual step {step.number}/{step.total} ({step.change.id})\n"
               f"  In {step.path}\n  {step.todo}.", err=True)
    while True:
        answer = click.prompt("Type 'done' once saved in the console, or 'stop' to stop here",
                              default="", show_default=False, err=True).strip().lower()
        if answer in ("done", "stop"):
            return answer == "done"


def _settle_journal(state_uri: str | None, tenant_uri: str, provider: Provider,
                    domain: str) -> None:
    """Nothing to apply: still record what a killed apply left in doubt (SPEC §6)."""
    if not _state(state_uri, tenant_uri).exists:
        return  # nothing was ever applied through this store
    from reconciler.apply import settle

    with _store(state_uri, tenant_uri) as store:
        result = settle(provider, store, domain)
    if result is not None:
        _echo_takeover(result)
        if result.recovered:
            click.echo(f"Recorded {len(result.recovered)} change(s) of the interrupted run "
                       f"{result.run_id} as recovered: they were in effect already.")


def _echo_takeover(result: Any) -> None:
    """Say so when this apply took over a lock left by a dead process (SPEC §6)."""
    stale = getattr(result, "took_over", None)
    if stale is not None:
        click.echo(f"Took over the lock of {stale.tenant_key} left by {stale.describe()}: "
                   f"{stale.gone_because}. Its unfinished changes were checked against the "
                   "tenant first.", err=True)


def _stopped_message(error: BaseException, partial: Any, total: int) -> str:
    """Why an apply ended early, what it did, and that a re-run finishes it."""
    done = f"{len(partial.applied)} of {total} changes applied (run {partial.run_id})"
    if isinstance(error, KeyboardInterrupt):
        from reconciler.apply import stop_signal

        signum = stop_signal(error)
        if signum is not None:  # asked to stop: the batch in flight finished first
            return (f"Apply stopped by {signal.Signals(signum).name} between batches: {done}. "
                    "The journal is consistent and the lock is released: run apply again to "
                    "finish the rest.")
        return (f"Apply interrupted: {done}. The lock is released; run apply again: it checks "
                "the batch that was in flight against the tenant and finishes the rest.")
    failed = f"; stopped at {partial.failed}" if partial.failed else ""
    return (f"Apply stopped: {done}{failed}. The journal is consistent: fix the cause and run "
            "apply again to finish.")


def _confirm(the_plan: Plan) -> None:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation: stdin is not a terminal; "
                         "review the plan and pass --auto-approve")
    answer = click.prompt(
        f"Apply these {len(the_plan.changes)} changes to {the_plan.tenant}? "
        "Only 'yes' will be accepted", default="", show_default=False,
        err=True)  # on stderr: stdout may be piped into a file or `tail`
    if answer.strip() != "yes":
        raise Cancelled("Apply cancelled; nothing was changed.")


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar with ETA on a terminal; nothing when piped (or while prompting)."""
    if not enabled or not sys.stderr.isatty():
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
@state_option
def export(tenant_uri: str, out: str | None, state_uri: str | None) -> int:
    """Write the tenant's current state as a valid desired-state file."""
    with _provider(tenant_uri, state_uri) as provider:
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
@state_option
def show(tenant_uri: str, fmt: str, state_uri: str | None) -> int:
    """Print the tenant's current external-messaging state."""
    with _provider(tenant_uri, state_uri) as provider:
        state = provider.read()
        # Values no API reads (lineworks:) are labelled with where they came from.
        origin = provider.provenance() if isinstance(provider, AttestingProvider) else {}
    if fmt == "json":
        data = workflow.state_json(state)
        if origin:
            data["provenance"] = origin
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(_show_text(state, provider.key, origin=origin), nl=False)
    return 0


def _show_text(state: TenantState, key: str, shown: int = 20,
               origin: dict[str, str] | None = None) -> str:
    def src(name: ChannelName, *fields: str) -> str:
        labels = {label(origin.get(f"{name.value}.{f}", "")) for f in fields} if origin else {""}
        return f"  ({', '.join(sorted(labels))})" if labels - {""} else ""

    lines = [f"Tenant {state.domain} ({key}): {len(state.directory)} members", ""]
    for name in ChannelName:
        ch = state.channels[name]
        lines.append(f"{name.value} — {name.label}: {'on' if ch.enabled else 'off'}"
                     + src(name, "enabled"))
        lines.append(f"  auto_grant_new_members: {_onoff(ch.auto_grant_new_members)}"
                     + src(name, "auto_grant_new_members"))
        lines.append(f"  restrict_file_transfer: {_onoff(ch.restrict_file_transfer)}"
                     + src(name, "restrict_file_transfer"))
        if ch.greeting_enabled is not None:
            lines.append(f"  greeting: {_onoff(ch.greeting_enabled)} "
                         f"{json.dumps(ch.greeting_message or '', ensure_ascii=False)}"
                         + src(name, "greeting_enabled", "greeting_message"))
        if ch.all_members:
            lines.append(f"  members: all ({len(ch.members)})" + src(name, "all_members"))
        else:
            listed = sorted(ch.members)
            more = f", … and {len(listed) - shown} more" if len(listed) > shown else ""
            lines.append(f"  members: {len(listed)} listed"
                         + (f" ({', '.join(listed[:shown])}{more})" if listed else "")
                         + src(name, "members"))
        lines.append(f"  open rooms with {name.external}: {ch.open_room_total}"
                     + ("  (not readable)" if origin else ""))
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
        click.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2))
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
    if path is None and tenant_uri.startswith("lineworks:"):
        from reconciler.providers.lineworks import LineWorksConfig

        return LineWorksConfig.from_uri(tenant_uri).key  # no request: settings only
    return f"local:{path.resolve()}" if path else tenant_uri


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@state_option
def attest(file: str, tenant_uri: str, yes: bool, state_uri: str | None) -> int:
    """Record that the console shows what FILE says, for settings no API can read.

    For a lineworks: tenant: write FILE to match the console (Admin > Service > Message >
    External messaging) and attest it once; later plans compare against it, labelled
    "attested, not read".
    """
    from reconciler.apply import default_actor
    from reconciler.desired import check_against_tenant, load_desired

    desired = load_desired(file)
    with _provider(tenant_uri, state_uri) as provider:
        if not isinstance(provider, AttestingProvider):
            raise UsageError(f"{provider.key} is read directly; there is nothing to attest")
        state = provider.read()
        check_against_tenant(desired, state.domain, state.directory)
        if not yes and not click.confirm(
                f"Record {file} as what the console of {state.domain} shows now?", default=False,
                err=True):
            raise Cancelled("Attest cancelled; nothing was recorded.")
        recorded = provider.attest(desired, default_actor())
    click.echo(f"Attested {len(recorded)} value(s) of {state.domain}: {', '.join(recorded)}.")
    return 0


@cli.command()
@click.argument("tenant", required=False)
@tenant_option
@state_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def unlock(tenant: str | None, tenant_uri: str, state_uri: str | None, yes: bool) -> int:
    """Clear a tenant's apply lock left by a crashed or killed run (asks first).

    TENANT is the tenant as `lwr lock list` shows it, or a tenant URI; default: --tenant.
    """
    if tenant is not None and local_path(tenant) is not None:
        tenant_uri = tenant  # a local tenant's default state is beside it
    with _store(state_uri, tenant_uri) as store:
        held_locks = store.list_locks()
        keys = {h.tenant_key for h in held_locks}
        key = tenant if tenant in keys else open_provider_key(tenant or tenant_uri)
        held = next((h for h in held_locks if h.tenant_key == key), None)
        if held is None:
            click.echo("No lock was held.")
            return 0
        if not yes and not click.confirm(f"Clear the apply lock of {key}, held by "
                                         f"{held.describe()}? {_holder_status(held)}",
                                         default=False, err=True):
            raise Cancelled("Unlock cancelled; the lock is kept.")
        holder = store.unlock(key)
    click.echo(f"Lock cleared (was held by {holder})." if holder else "No lock was held.")
    return 0


def _holder_status(held: LockHolder) -> str:
    """Whether a lock's holder is gone, still running, or cannot be told from here."""
    import socket

    if held.stale:
        return f"{held.gone_because}: the lock is stale"
    if held.alive:
        return ("its database session is STILL OPEN (a running apply keeps the tenant locked "
                "until that session ends, even with its record cleared)")
    if held.host == socket.gethostname():
        return (f"process {held.pid} is STILL RUNNING on this host (an apply on this "
                "host stays protected by its lock file even when its record is cleared)")
    return f"it was taken on {held.host}: make sure that run is over"


@cli.group("lock")
def lock_group() -> None:
    """Tenant apply locks in the state store."""


@lock_group.command("list")
@state_option
@state_tenant_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def lock_list(state_uri: str | None, tenant_uri: str, fmt: str) -> int:
    """Every tenant lock held in the state store: holder, operation, since, and whether the
    holder is still there."""
    location = _state(state_uri, tenant_uri)
    if not location.exists:
        holders: list[LockHolder] = []
    else:
        with _store(state_uri, tenant_uri) as store:
            holders = store.list_locks()
    if fmt == "json":
        click.echo(json.dumps([{
            "tenant": h.tenant_key, "user": h.user, "host": h.host, "pid": h.pid,
            "operation": h.operation, "since": h.since, "stale": h.stale,
        } for h in holders], ensure_ascii=False, indent=2))
        return 0
    if not holders:
        click.echo(f"No locks held in {location}.")
        return 0
    for h in holders:
        click.echo(f"{h.tenant_key}\n  held by {h.describe()}\n  {_holder_status(h)}")
    return 0


@cli.group("state")
def state_group() -> None:
    """The state store itself (lock, journal, audit log, attested state)."""


@state_group.command("migrate")
@state_option
@state_tenant_option
def state_migrate(state_uri: str | None, tenant_uri: str) -> int:
    """Create the state store's schema, or upgrade it to this lwr's version (idempotent).

    Needed once for a postgresql:// state, and after upgrading lwr; an SQLite state is
    created on first use anyway.
    """
    location = _state(state_uri, tenant_uri)
    before, after = location.migrate()
    if before == after:
        click.echo(f"State schema in {location} is up to date (version {after}).")
    else:
        click.echo(f"State schema in {location} migrated from version {before} to {after}.")
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
        auto = " (automatic greeting)" if row.automatic else ""
        click.echo(f"{row.sent_at}  {row.channel:<9} {row.member} ↔ {row.external}{hidden}  "
                   f"{row.sender}{auto}: {printable(row.text)}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """Run `lwr` with `argv` and return its exit code; every failure becomes a code."""
    try:
        code = cli.main(args=argv, prog_name="lwr", standalone_mode=False)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click wraps Ctrl-C (and SIGTERM)
            return _interrupted(e.__cause__)
        return _fail("Aborted.", 1)
    except click.exceptions.ClickException as e:
        e.show()
        return 1  # bad usage is bad input (1); exit 2 means "changes present"
    except LwrError as e:
        return _fail(str(e) if str(e).startswith("refused") else f"Error: {e}", e.exit_code)
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except BrokenPipeError:
        return 1  # a closed pipe (`| head`) is not worth a traceback
    except Exception as e:  # the last line of defence: never a traceback for users
        if os.environ.get("LWR_DEBUG"):
            raise
        return _fail(f"Internal error: {type(e).__name__}: {e}\n(set LWR_DEBUG=1 for details "
                     "and please report it)", 1)
    return code if isinstance(code, int) else 0


def _interrupted(error: KeyboardInterrupt) -> int:
    """Exit 128 + the signal, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM."""
    signum = _signal_of(error)
    if signum == signal.SIGINT:
        return _fail("Interrupted.", 128 + signum)
    return _fail(f"Stopped by {signal.Signals(signum).name}.", 128 + signum)


def _fail(message: str, code: int) -> int:
    click.echo(message, err=True)
    return code


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside an apply's batches: unwinds like Ctrl-C, so transactions roll back,
    files and locks are released, and `lwr` exits 143 with a message instead of dying."""

    signum = signal.SIGTERM


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _signal_of(error: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: SIGTERM or SIGINT (Ctrl-C, the default)."""
    if isinstance(error, _Terminated):
        return error.signum
    from reconciler.apply import stop_signal

    return stop_signal(error) or signal.SIGINT


def main() -> None:
    """Console-script entry point."""
    # Only here, not in run(): a host program (or pytest) calling run() keeps its handlers.
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes again at exit; point stdout at devnull so that cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)

"""export, show, attest, and `lwr tenant …` for the embedded local tenant."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import workflow
from reconciler.cli.common import (
    cli,
    messages,
    protected_files,
    provider_for,
    state_option,
    tenant_option,
    text_or_json,
    write_or_echo,
    write_output,
)
from reconciler.cli.helptext import N_, Choice
from reconciler.errors import Cancelled, UsageError
from reconciler.i18n import Said
from reconciler.model import ChannelName
from reconciler.providers import local_path
from reconciler.render.json import dump
from reconciler.render.state import state_text
from reconciler.terminal import printable

if TYPE_CHECKING:
    pass


@cli.command()
@tenant_option
@click.option(
    "--out",
    type=click.Path(),
    help=N_(
        "Write to this file, not stdout; with a {tenant} template or --tenants: to this "
        "directory, DOMAIN.yaml for each tenant."
    ),
)
@click.option(
    "--tenants",
    "tenant_names",
    multiple=True,
    help=N_(
        "With --out DIR: the {tenant} values of the --tenant template, comma-separated "
        "(repeatable); default: every local tenant file the template matches."
    ),
)
@click.option(
    "--schema-out",
    type=click.Path(dir_okay=False),
    default=None,
    help=N_(
        "Also write the desired-state JSON Schema to this file, and start the export with "
        "an editor hint pointing at it (relative to --out, else to the current directory)."
    ),
)
@click.option(
    "--selectors",
    is_flag=True,
    help="Write an org-unit selector (include_orgunits) wherever a whole unit is on a list, "
    "and plain emails for the rest (one tenant; it must read its org chart).",
)
@state_option
def export(
    tenant_uri: str,
    out: str | None,
    tenant_names: tuple[str, ...],
    schema_out: str | None,
    selectors: bool,
    state_uri: str | None,
) -> int:
    """Write the tenant's current state as a valid desired-state file (or every tenant of a
    fleet, one file each, for `lwr plan DIR`)."""
    if tenant_names or "{tenant}" in tenant_uri:
        from reconciler.cli.fleets import export_dir

        if not out:
            raise UsageError(Said.of("exporting many tenants needs --out DIR"))
        if schema_out:
            raise UsageError(Said.of("--schema-out is for one tenant; use `lwr schema --out` once"))
        if selectors:
            raise UsageError(Said.of("--selectors is for one tenant: export each tenant with it"))
        names = [n.strip() for part in tenant_names for n in part.split(",") if n.strip()]
        return export_dir(tenant_uri, names, out, state_uri)
    hint = schema_hint(schema_out, out) if schema_out else None
    with provider_for(tenant_uri, state_uri, readonly=True) as provider:
        text = workflow.export_yaml(provider, hint, selectors=selectors)
    if schema_out:
        write_output(schema_out, schema_text())
    write_or_echo(text, out, messages()._("Exported to {path}.", path=str(out)))
    return 0


def schema_text() -> str:
    """The shipped desired-state JSON Schema, as shipped (from the wheel or the checkout)."""
    from reconciler.resources import data_dir

    return (data_dir("schemas") / "desired-state.schema.json").read_text(encoding="utf-8")


def schema_hint(schema_out: str, out: str | None) -> str:
    """Where the schema at `schema_out` is, seen from the directory the export lands in:
    an editor resolves `$schema` relative to the YAML file."""
    base = os.path.dirname(os.path.abspath(out)) if out else os.getcwd()
    return Path(os.path.relpath(os.path.abspath(schema_out), base)).as_posix()


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help=N_("Write the schema to this file, not stdout."),
)
def schema(out: str | None) -> int:
    """Print the desired-state JSON Schema, for editors and offline CI checks.

    Point an editor at it with a first line `# yaml-language-server: $schema=PATH` (PATH
    relative to the YAML file); `lwr export --schema-out` writes both.
    """
    wrote = messages()._("Wrote the desired-state schema to {path}.", path=str(out))
    write_or_echo(schema_text(), out, wrote)
    return 0


@cli.command()
@tenant_option
@text_or_json(N_("text for people, json for scripts (every setting and member)."))
@click.option(
    "--org-chart",
    "with_chart",
    is_flag=True,
    help=N_("Also the org units and groups, with how many members each has."),
)
@state_option
def show(tenant_uri: str, fmt: str, with_chart: bool, state_uri: str | None) -> int:
    """Print the tenant's current external-messaging state."""
    from reconciler.render.state import org_chart_json, org_chart_text

    with provider_for(tenant_uri, state_uri, readonly=True) as provider:
        state = provider.read()
        # Values no API reads (lineworks:) are labelled with where they came from.
        origin = provider.provenance()
        chart = provider.org_chart() if with_chart else None
    if fmt == "json":
        data = workflow.state_json(state)
        if origin:
            data["provenance"] = origin
        if chart is not None:
            data["org_chart"] = org_chart_json(chart)
        click.echo(dump(data), nl=False)
    else:
        click.echo(state_text(state, provider.key, origin=origin, t=messages()), nl=False)
        if chart is not None:
            click.echo(org_chart_text(chart, messages()), nl=False)
    return 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@tenant_option
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@state_option
def attest(file: str, tenant_uri: str, yes: bool, state_uri: str | None) -> int:
    """Record that the console shows what FILE says, for settings no API can read.

    For a lineworks: tenant: write FILE to match the console (Admin > Service > Message >
    External messaging) and attest it once; later plans compare against it, labelled
    "attested, not read".
    """
    from reconciler.apply import default_actor
    from reconciler.desired import check_against_tenant, load_desired
    from reconciler.selecting import with_selectors

    desired = load_desired(file)
    with provider_for(tenant_uri, state_uri) as provider:
        if not provider.ATTESTED:
            raise UsageError(
                Said.of(
                    "{tenant} is read directly; there is nothing to attest", tenant=provider.key
                )
            )
        state = provider.read()
        check_against_tenant(desired, state.domain, state.directory)
        desired = with_selectors(desired, provider, state.directory)  # the list they select
        t = messages()
        if not yes and not click.confirm(
            t._(
                "Record {file} as what the console of {domain} shows now?",
                file=file,
                domain=state.domain,
            ),
            default=False,
            err=True,
        ):
            raise Cancelled(Said.of("Attest cancelled; nothing was recorded."))
        recorded = provider.attest(desired, default_actor())
    click.echo(
        messages().n_(
            "Attested {n} value of {domain}: {values}.",
            "Attested {n} values of {domain}: {values}.",
            len(recorded),
            domain=state.domain,
            values=", ".join(recorded),
        )
    )
    return 0


@cli.group()
def tenant() -> None:
    """Manage the embedded local tenant: seed a demo, simulate HR changes and contacts."""


def local_tenant(tenant_uri: str) -> Any:
    from reconciler.providers.local import LocalTenant

    path = local_path(tenant_uri)
    if path is None:
        raise UsageError(Said.of("`lwr tenant` commands work on local: tenants only"))
    return LocalTenant, path


@tenant.command("init")
@tenant_option
@click.option("--demo", is_flag=True, required=True, help=N_("Seed the demo company."))
@click.option(
    "--members",
    type=click.IntRange(8, 2_000_000),
    default=8,
    show_default=True,
    help=N_("How many members the company has (8 named demo members, then member000009@…)."),
)
@click.option(
    "--domain",
    default="example.co.jp",
    show_default=True,
    help=N_("The company's domain: the `tenant:` a desired file for it names."),
)
@click.option("--force", is_flag=True, help=N_("Replace an existing tenant file."))
def tenant_init(tenant_uri: str, demo: bool, members: int, domain: str, force: bool) -> int:
    """Create a local tenant seeded with a demo company."""
    from reconciler.providers.local import init_demo

    _, path = local_tenant(tenant_uri)
    owner = protected_files(with_tenants=False).owner_of(path.resolve())
    if owner is not None:  # --force would replace the journal and audit log with a tenant
        raise UsageError(
            Said.of(
                "refusing to create a tenant at {path}: it is {owner}", path=str(path), owner=owner
            )
        )
    domain = domain.lower()  # as the tenant stores it: domains are case-insensitive
    init_demo(path, domain=domain, members=members, force=force).close()
    click.echo(
        messages()._(
            "Demo tenant {domain} with {members} members created at {path}.",
            domain=domain,
            members=members,
            path=str(path),
        )
    )
    return 0


@tenant.command("contact")
@tenant_option
@click.argument("member")
@click.argument("external")
@click.option(
    "--channel",
    type=Choice([c.value for c in ChannelName]),
    required=True,
    help=N_("Where the external person adds MEMBER: line (LINE) or lineworks (another company)."),
)
@click.option("--name", default=None, help=N_("The external person's display name."))
def tenant_contact(
    tenant_uri: str, member: str, external: str, channel: str, name: str | None
) -> int:
    """Simulate an external user adding MEMBER (LINE friend / LINE WORKS contact)."""
    cls, path = local_tenant(tenant_uri)
    t = cls.open(path)
    try:
        result = t.contact(member, external, ChannelName(channel), name)
    finally:
        t.close()
    fields = {"external": external, "member": member, "channel": channel, "room": result.room_id}
    if result.greeting_sent:
        said = messages()._(
            "{external} added {member} on {channel} and received the greeting (room {room}).",
            **fields,
        )
    else:
        said = messages()._("{external} added {member} on {channel} (room {room}).", **fields)
    click.echo(printable(said))
    return 0


@tenant.command("messages")
@tenant_option
@click.option("--search", default=None, help=N_("Only messages containing this text."))
def tenant_messages(tenant_uri: str, search: str | None) -> int:
    """Search message history, hidden rooms included (as Admin Audit does)."""
    cls, path = local_tenant(tenant_uri)
    t = cls.open(path, readonly=True)
    try:
        rows = t.messages(search=search)
    finally:
        t.close()
    words = messages()
    for row in rows:
        hidden = " " + words._("[hidden]") if row.hidden else ""
        auto = " " + words._("(automatic greeting)") if row.automatic else ""
        click.echo(
            f"{row.sent_at}  {row.channel:<9} {row.member} ↔ {row.external}{hidden}  "
            f"{row.sender}{auto}: {printable(row.text)}"
        )
    return 0

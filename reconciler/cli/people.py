"""`lwr tenant join/move/leave/group`: HR changes in the simulated company of a local tenant.

Registered on the `tenant` group of cli.tenants; cli.lazy loads this module for `tenant`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.cli.common import messages, tenant_option
from reconciler.cli.tenants import local_tenant, tenant
from reconciler.errors import UsageError
from reconciler.i18n import N_, Said
from reconciler.terminal import printable

T = TypeVar("T")


@tenant.command("join")
@tenant_option
@click.argument("email")
@click.option("--name", default=None, help=N_("Display name (UTF-8, e.g. 山田 太郎)."))
@click.option(
    "--orgunit",
    "orgunits",
    multiple=True,
    metavar="PATH",
    help=N_(
        "The org unit the hire joins: a name or a path from the top, 営業部/東日本 "
        "(repeatable: a member may belong to several)."
    ),
)
def tenant_join(tenant_uri: str, email: str, name: str | None, orgunits: tuple[str, ...]) -> int:
    """Simulate a new hire joining the company (auto-grant applies)."""
    result = _hr(tenant_uri, lambda t: t.join(email, name, orgunits))
    t = messages()
    if result.orgunits:
        text = t._("{email} joined {units}.", email=email, units=", ".join(result.orgunits))
    else:
        text = t._("{email} joined.", email=email)
    click.echo(printable(text))
    return 0


@tenant.command("move")
@tenant_option
@click.argument("email")
@click.option(
    "--orgunit",
    "orgunits",
    multiple=True,
    required=True,
    metavar="PATH",
    help=N_(
        "The org unit the member moves to, by name or path (repeatable); the member "
        "leaves every other unit."
    ),
)
def tenant_move(tenant_uri: str, email: str, orgunits: tuple[str, ...]) -> int:
    """Simulate a member moving to another org unit (no list changes by itself)."""
    result = _hr(tenant_uri, lambda t: t.move(email, orgunits))
    t = messages()
    after = ", ".join(result.after)
    if result.before:
        text = t._(
            "{email} moved to {after} (from {before}).",
            email=result.email,
            after=after,
            before=", ".join(result.before),
        )
    else:
        text = t._("{email} moved to {after} (from no org unit).", email=result.email, after=after)
    click.echo(printable(text))
    return 0


@tenant.command("leave")
@tenant_option
@click.argument("email")
def tenant_leave(tenant_uri: str, email: str) -> int:
    """Simulate a member leaving the company: out of the directory, every list, org unit
    and group; their rooms with outsiders close, the history stays in Admin Audit."""
    result = _hr(tenant_uri, lambda t: t.leave(email))
    t = messages()
    lines = [t._("{email} left the company.", email=result.email)]
    if result.removed_from:
        lists = ", ".join(c.value for c in result.removed_from)
        lines.append(t._("  off the connected-members list of: {lists}", lists=lists))
    if result.orgunits:
        units = ", ".join(result.orgunits)
        lines.append(t._("  out of org units: {units}", units=units))
    if result.groups:
        lines.append(t._("  out of groups: {groups}", groups=", ".join(result.groups)))
    if result.rooms_closed:
        lines.append(
            t.n_(
                "  {n} room with outsiders closed: they see the member as unknown; "
                "the history stays in Admin Audit",
                "  {n} rooms with outsiders closed: they see the member as unknown; "
                "the history stays in Admin Audit",
                result.rooms_closed,
            )
        )
    click.echo(printable("\n".join(lines)))
    return 0


@tenant.command("group")
@tenant_option
@click.argument("name")
@click.option(
    "--add", "add", multiple=True, metavar="EMAIL", help=N_("A member to add (repeatable).")
)
@click.option(
    "--remove",
    "remove",
    multiple=True,
    metavar="EMAIL",
    help=N_("A member to remove (repeatable)."),
)
def tenant_group(tenant_uri: str, name: str, add: tuple[str, ...], remove: tuple[str, ...]) -> int:
    """Simulate members joining or leaving the directory group NAME."""
    if not add and not remove:
        raise UsageError(
            Said.of("say who joins or leaves the group: --add EMAIL or --remove EMAIL")
        )
    result = _hr(tenant_uri, lambda t: t.edit_group(name, add, remove))
    t = messages()
    lines = [
        t._("{email} joined group {group}.", email=e, group=result.group) for e in result.added
    ]
    lines += [
        t._("{email} left group {group}.", email=e, group=result.group) for e in result.removed
    ]
    if not lines:
        lines = [t._("Group {group} is unchanged.", group=result.group)]
    click.echo(printable("\n".join(lines)))
    return 0


def _hr(tenant_uri: str, change: Callable[[Any], T]) -> T:
    """`change` on the local tenant opened for writing, closed afterwards."""
    cls, path = local_tenant(tenant_uri)
    t = cls.open(path)
    try:
        return change(t)
    finally:
        t.close()

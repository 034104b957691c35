"""The state store's commands: audit, unlock, lock list, state migrate."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import (
    cli,
    open_provider_key,
    state_for,
    state_option,
    state_tenant_option,
    store_for,
    tenant_option,
)
from reconciler.errors import Cancelled
from reconciler.providers import local_path
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.store.base import LockHolder


@cli.command()
@tenant_option
@state_option
@click.option("--verify", is_flag=True, help="Check the log's hash chain; exit 1 if broken.")
@click.option("--limit", type=int, default=50, show_default=True, help="Newest entries shown.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def audit(tenant_uri: str, state_uri: str | None, verify: bool, limit: int, fmt: str) -> int:
    """What was applied, when, by whom, with what result."""
    with store_for(state_uri, tenant_uri) as store:
        if verify:
            result = store.verify_audit()
            if not result.ok:
                click.echo(printable(f"Audit log BROKEN at entry {result.first_bad_seq}: "
                                     f"{result.reason}"), err=True)
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
        click.echo(printable(f"{e.at}  {e.actor}  {e.result:<9} {e.channel:<9} {e.action}"
                             f"{target}{error}"))
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
    with store_for(state_uri, tenant_uri) as store:
        held_locks = store.list_locks()
        keys = {h.tenant_key for h in held_locks}
        key = tenant if tenant in keys else open_provider_key(tenant or tenant_uri)
        held = next((h for h in held_locks if h.tenant_key == key), None)
        if held is None:
            click.echo("No lock was held.")
            return 0
        if not yes and not click.confirm(printable(f"Clear the apply lock of {key}, held by "
                                                   f"{held.describe()}? {holder_status(held)}"),
                                         default=False, err=True):
            raise Cancelled("Unlock cancelled; the lock is kept.")
        holder = store.unlock(key)
    click.echo(printable(f"Lock cleared (was held by {holder}).") if holder
               else "No lock was held.")
    return 0


def holder_status(held: LockHolder) -> str:
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
    location = state_for(state_uri, tenant_uri)
    if not location.exists:
        holders: list[LockHolder] = []
    else:
        with store_for(state_uri, tenant_uri) as store:
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
        click.echo(printable(f"{h.tenant_key}\n  held by {h.describe()}\n  {holder_status(h)}"))
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
    location = state_for(state_uri, tenant_uri)
    before, after = location.migrate()
    if before == after:
        click.echo(f"State schema in {location} is up to date (version {after}).")
    else:
        click.echo(f"State schema in {location} migrated from version {before} to {after}.")
    return 0



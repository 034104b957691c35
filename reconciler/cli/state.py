"""The state store's commands: audit, unlock, lock list, state migrate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from reconciler.audit import KEY_ENV, parse_anchor
from reconciler.cli.common import (
    cli,
    messages,
    resolve_tenant_key,
    state_for,
    state_option,
    state_tenant_option,
    store_for,
    tenant_option,
    text_or_json,
)
from reconciler.cli.helptext import N_, HelpGroup
from reconciler.errors import Cancelled, StateError, UsageError
from reconciler.i18n import Said, say
from reconciler.providers import local_path
from reconciler.render.audit import (
    audit_text,
    holder_status,
    locks_json,
    locks_text,
    verify_text,
)
from reconciler.render.json import dump
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.store.base import AuditHead, LockHolder, StateStore


@cli.group(invoke_without_command=True)
@tenant_option
@state_option
@click.option("--verify", is_flag=True, help=N_("Check the log's hash chain; exit 1 if broken."))
@click.option(
    "--head",
    "anchor",
    metavar="SEQ:HASH",
    default=None,
    help=N_(
        "With --verify: also fail when the log lost or changed anything up to this "
        "head, as `lwr audit head` printed it earlier (kept outside the store)."
    ),
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help=N_(
        "How many of the newest entries to show (text says how many there are in all); "
        "0 shows every entry."
    ),
)
@text_or_json(N_("text: one line per entry; json: a list of entries, every field."))
@click.pass_context
def audit(
    ctx: click.Context,
    tenant_uri: str,
    state_uri: str | None,
    verify: bool,
    anchor: str | None,
    limit: int,
    fmt: str,
) -> int:
    """What was applied, when, by whom, with what result.

    The log is hash-chained; with LWR_AUDIT_KEY (or LWR_AUDIT_KEY_FILE, a 0600 file) new
    entries are chained with an HMAC, so rewriting it takes the key. See docs/reliability.md,
    "Audit log integrity".
    """
    if ctx.invoked_subcommand is not None:
        if verify or anchor is not None:
            raise UsageError(
                Said.of(
                    "--verify and --head are options of `lwr audit`, not of `lwr audit {command}`",
                    command=ctx.invoked_subcommand,
                )
            )
        return 0
    if anchor is not None and not verify:
        raise UsageError(
            Said.of("--head is checked by --verify: `lwr audit --verify --head SEQ:HASH`")
        )
    kept = parse_anchor(anchor) if anchor is not None else None  # before opening anything
    with existing_store(state_uri, tenant_uri) as store:
        if verify:
            return _verify(store, kept)
        key = resolve_tenant_key(tenant_uri)
        entries = store.audit_entries(tenant_key=key, limit=limit or None)
        total = store.audit_count(tenant_key=key) if len(entries) == limit else len(entries)
    if fmt == "json":
        click.echo(dump([e.to_json() for e in entries]), nl=False)
        if total > len(entries):
            shown = messages()._(
                "{shown:,} of {total:,} entries shown (--limit).", shown=len(entries), total=total
            )
            click.echo(shown, err=True)
        return 0
    click.echo(audit_text(entries, total, messages()), nl=False)
    return 0


def _verify(store: StateStore, anchor: AuditHead | None) -> int:
    """`lwr audit --verify`: the verdict, and what it could not check."""
    result = store.verify_audit(anchor)
    text = verify_text(result, KEY_ENV, messages())
    click.echo(text, nl=False, err=not result.ok)
    return 0 if result.ok else 1


@audit.command("head")
@state_option
@state_tenant_option
@text_or_json(N_('text: `SEQ HASH`; json: {"seq": …, "hash": …}.'))
@click.pass_context
def audit_head(ctx: click.Context, state_uri: str | None, tenant_uri: str, fmt: str) -> int:
    """Print the log's head as `SEQ HASH`, for a pipeline to keep outside the store and
    check later with `lwr audit --verify --head SEQ:HASH`."""
    state_uri, tenant_uri, fmt = (
        _inherited(ctx, name, value)
        for name, value in (("state_uri", state_uri), ("tenant_uri", tenant_uri), ("fmt", fmt))
    )
    with existing_store(state_uri, tenant_uri) as store:
        head = store.audit_head()
    if fmt == "json":
        click.echo(json.dumps({"seq": head.seq, "hash": head.hash}))
    else:
        click.echo(str(head))
    return 0


def _inherited(ctx: click.Context, name: str, value: Any) -> Any:
    """An option of `lwr audit` given before the subcommand (`lwr audit --state X head`)
    counts as the subcommand's own, rather than being silently ignored."""
    if ctx.parent is None or ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
        return value
    return ctx.parent.params.get(name, value)


@contextmanager
def existing_store(state_uri: str | None, tenant_uri: str) -> Iterator[StateStore]:
    """The store for a command that only reads it: a store that does not exist is an error
    (a mistyped --state must not be created and then reported empty)."""
    location = state_for(state_uri, tenant_uri)
    if not location.exists:
        raise StateError(
            Said.of(
                "no state store at {location}: nothing was applied through it, or "
                "--state (LWR_STATE) names the wrong file; nothing was created",
                location=str(location),
            )
        )
    with store_for(state_uri, tenant_uri, readonly=True) as store:
        yield store


@cli.command()
@click.argument("tenant", required=False)
@tenant_option
@state_option
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
def unlock(tenant: str | None, tenant_uri: str, state_uri: str | None, yes: bool) -> int:
    """Clear a tenant's apply lock left by a crashed or killed run (asks first).

    TENANT is the tenant as `lwr lock list` shows it, or a tenant URI; default: --tenant.
    """
    if tenant is not None and local_path(tenant) is not None:
        tenant_uri = tenant  # a local tenant's default state is beside it
    location = state_for(state_uri, tenant_uri)
    if not location.exists:  # a mistyped --state must not be created to say so
        click.echo(
            printable(
                messages()._(
                    "No lock was held: there is no state store at {location} (nothing was "
                    "created).",
                    location=str(location),
                )
            )
        )
        return 0
    with store_for(state_uri, tenant_uri) as store:
        held_locks = store.list_locks()
        keys = {h.tenant_key for h in held_locks}
        key = tenant if tenant in keys else resolve_tenant_key(tenant or tenant_uri)
        held = next((h for h in held_locks if h.tenant_key == key), None)
        if held is None:
            click.echo(messages()._("No lock was held."))
            return 0
        t = messages()
        question = t._(
            "Clear the apply lock of {tenant}, held by {holder}? {status}",
            tenant=key,
            holder=say(held.describe(), t),
            status=holder_status(held, t),
        )
        if not yes and not click.confirm(printable(question), default=False, err=True):
            raise Cancelled(Said.of("Unlock cancelled; the lock is kept."))
        holder = store.unlock(key)
    t = messages()
    cleared = t._("Lock cleared (was held by {holder}).", holder=holder) if holder else None
    click.echo(printable(cleared or t._("No lock was held.")))
    return 0


def _command_group(name: str, doc: str) -> click.Group:
    """A group of `lwr` that only holds its commands (`lwr lock list`, `lwr state migrate`)."""
    group = HelpGroup(name, help=doc)
    cli.add_command(group)
    return group


lock_group = _command_group("lock", N_("Tenant apply locks in the state store."))


@lock_group.command("list")
@state_option
@state_tenant_option
@text_or_json(
    N_("text for people; json: a list of holders (tenant, user, host, pid, since, stale).")
)
def lock_list(state_uri: str | None, tenant_uri: str, fmt: str) -> int:
    """Every tenant lock held in the state store: holder, operation, since, and whether the
    holder is still there."""
    location = state_for(state_uri, tenant_uri)
    exists = location.exists
    if not exists:
        holders: list[LockHolder] = []
    else:
        with store_for(state_uri, tenant_uri, readonly=True) as store:
            holders = store.list_locks()
    if fmt == "json":
        click.echo(dump(locks_json(holders)), nl=False)
        return 0
    click.echo(locks_text(holders, str(location), exists=exists, t=messages()), nl=False)
    return 0


state_group = _command_group(
    "state", N_("The state store itself (lock, journal, audit log, attested state).")
)


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
    t = messages()
    if before == after:
        said = t._(
            "State schema in {location} is up to date (version {after}).",
            after=after,
            location=str(location),
        )
    else:
        said = t._(
            "State schema in {location} migrated from version {before} to {after}.",
            location=str(location),
            before=before,
            after=after,
        )
    click.echo(printable(said))
    return 0

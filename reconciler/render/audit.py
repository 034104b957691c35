"""The views of the state store's records: audit lines (`lwr audit`) and lock lines
(`lwr lock list`, `lwr unlock`'s question); every value made printable."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.store.base import AuditEntry, LockHolder

__all__ = ["audit_text", "holder_status", "locks_text"]


def audit_text(entries: Sequence[AuditEntry], total: int | None = None) -> str:
    """One line per audit entry: when, who, result, channel, action, target, error; with
    `total` (entries in the log) over the number shown, a last line saying so."""
    if not entries:
        return "No applied changes recorded for this tenant.\n"
    lines = []
    for e in entries:
        target = f" {e.target}" if e.target else ""
        error = f" ({e.error})" if e.error else ""
        lines.append(
            printable(f"{e.at}  {e.actor}  {e.result:<9} {e.channel:<9} {e.action}{target}{error}")
        )
    if total is not None and total > len(entries):
        lines.append(
            f"{len(entries):,} of {total:,} entries shown, the newest; "
            "`lwr audit --limit N` shows more (0: all)."
        )
    return "\n".join(lines) + "\n"


def locks_text(holders: Sequence[LockHolder], location: str, *, exists: bool = True) -> str:
    """Each lock held in the store at `location`: tenant, holder, and whether the holder is
    still there; `exists` False: there is no store there (so no lock either)."""
    if not exists:
        return printable(f"No locks held: there is no state store at {location}.") + "\n"
    if not holders:
        return printable(f"No locks held in {location}.") + "\n"
    return "".join(
        printable(f"{h.tenant_key}\n  held by {h.describe()}\n  {holder_status(h)}") + "\n"
        for h in holders
    )


def locks_json(holders: Sequence[LockHolder]) -> list[dict[str, object]]:
    """`lwr lock list --format json`: each holder, every field."""
    return [
        {
            "tenant": h.tenant_key,
            "user": h.user,
            "host": h.host,
            "pid": h.pid,
            "operation": h.operation,
            "since": h.since,
            "stale": h.stale,
        }
        for h in holders
    ]


def holder_status(held: LockHolder) -> str:
    """Whether a lock's holder is gone, still running, or cannot be told from here."""
    if held.stale:
        return f"{held.gone_because}: the lock is stale"
    if held.alive:
        return (
            "its database session is STILL OPEN (a running apply keeps the tenant locked "
            "until that session ends, even with its record cleared)"
        )
    if held.host == socket.gethostname():
        return (
            f"process {held.pid} is STILL RUNNING on this host (an apply on this "
            "host stays protected by its lock file even when its record is cleared)"
        )
    return f"it was taken on {held.host}: make sure that run is over"

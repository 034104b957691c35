"""The views of the state store's records: audit lines (`lwr audit`) and lock lines
(`lwr lock list`, `lwr unlock`'s question); every value made printable."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.i18n import ENGLISH, N_, Messages, say
from reconciler.render.values import pad
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.store.base import AuditEntry, LockHolder
    from reconciler.store.chain import VerifyResult

__all__ = ["audit_text", "holder_status", "locks_text", "verify_text"]


#: The audit log's results (store.chain.AuditResult), as a reader's language says them.
_RESULTS = {
    "applied": N_("applied"),
    "attested": N_("attested"),
    "recovered": N_("recovered"),
    "failed": N_("failed"),
}


def audit_text(
    entries: Sequence[AuditEntry], total: int | None = None, t: Messages = ENGLISH
) -> str:
    """One line per audit entry: when, who, result, channel, action, target, error; with
    `total` (entries in the log) over the number shown, a last line saying so. Columns are
    aligned by display width; the log's own values (actor, target, error) are never
    translated."""
    if not entries:
        return t._("No applied changes recorded for this tenant.") + "\n"
    lines = []
    for e in entries:
        target = f" {e.target}" if e.target else ""
        error = f" ({e.error})" if e.error else ""
        result = t._(_RESULTS[e.result]) if e.result in _RESULTS else e.result
        lines.append(
            printable(
                f"{e.at}  {e.actor}  {pad(result, 9)} {pad(e.channel, 9)} {e.action}{target}{error}"
            )
        )
    if total is not None and total > len(entries):
        lines.append(
            t._(
                "{shown:,} of {total:,} entries shown, the newest; "
                "`lwr audit --limit N` shows more (0: all).",
                shown=len(entries),
                total=total,
            )
        )
    return "\n".join(lines) + "\n"


def locks_text(
    holders: Sequence[LockHolder], location: str, *, exists: bool = True, t: Messages = ENGLISH
) -> str:
    """Each lock held in the store at `location`: tenant, holder, and whether the holder is
    still there; `exists` False: there is no store there (so no lock either)."""
    if not exists:
        text = t._("No locks held: there is no state store at {location}.", location=location)
        return printable(text) + "\n"
    if not holders:
        return printable(t._("No locks held in {location}.", location=location)) + "\n"
    return "".join(
        printable(
            t._(
                "{tenant}\n  held by {holder}\n  {status}",
                tenant=h.tenant_key,
                holder=say(h.describe(), t),
                status=holder_status(h, t),
            )
        )
        + "\n"
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


def holder_status(held: LockHolder, t: Messages = ENGLISH) -> str:
    """Whether a lock's holder is gone, still running, or cannot be told from here."""
    if held.stale:
        return t._("{why}: the lock is stale", why=say(held.gone_because, t))
    if held.alive:
        return t._(
            "its database session is STILL OPEN (a running apply keeps the tenant locked "
            "until that session ends, even with its record cleared)"
        )
    if held.host == socket.gethostname():
        return t._(
            "process {pid} is STILL RUNNING on this host (an apply on this "
            "host stays protected by its lock file even when its record is cleared)",
            pid=held.pid,
        )
    return t._("it was taken on {host}: make sure that run is over", host=held.host)


def verify_text(result: VerifyResult, key_env: str, t: Messages = ENGLISH) -> str:
    """`lwr audit --verify`: the verdict and what it could not check (the reason of a broken
    log is the store's own words)."""
    if not result.ok:
        if result.first_bad_seq:
            text = t._(
                "Audit log BROKEN at entry {seq}: {reason}",
                seq=result.first_bad_seq,
                reason=result.reason,
            )
        else:
            text = t._("Audit log NOT VERIFIED: {reason}", reason=result.reason)
        return printable(text) + "\n"
    entries = t.n_("{n} entry", "{n} entries", result.checked)
    if result.keyed:
        head = t._(
            "Audit log OK: {entries}, hash chain intact ({keyed} keyed with {env}).",
            entries=entries,
            keyed=result.keyed,
            env=key_env,
        )
    else:
        head = t._("Audit log OK: {entries}, hash chain intact.", entries=entries)
    if result.anchored is None:
        tail = t._(
            "Not checked: truncation of the newest entries is detectable only against "
            "a head kept elsewhere: `lwr audit --verify --head SEQ:HASH` (from "
            "`lwr audit head`)."
        )
    else:
        tail = t._(
            "Nothing lost or changed up to the kept head (entry {seq}).", seq=result.anchored
        )
    return f"{head}\n{tail}\n"

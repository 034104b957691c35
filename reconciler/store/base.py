"""The StateStore protocol and its records: per-tenant lock, apply journal, hash-chained audit log.

Backends (store/sqlite.py, store/postgres.py; their shared SQL in store/sql.py) share these
types and the hashing rule of the audit chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as _str  # what dumps(ensure_ascii=False) uses
from typing import Any, Literal, Protocol

from reconciler.actions import Change

RunStatus = Literal["running", "done", "failed", "interrupted"]
EntryState = Literal["started", "done", "failed"]
#: applied: lwr's own call took effect; attested: a manual step an admin confirmed doing in
#: the console; recovered: found in effect after a killed run; failed: refused or errored.
AuditResult = Literal["applied", "attested", "recovered", "failed"]

#: prev_hash of the first audit row of a store.
GENESIS_HASH = "0" * 64


def utc_now() -> str:
    """Current time as UTC ISO 8601 with milliseconds and a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def current_user() -> str:
    """Login name of this process, without failing in containers that have no passwd entry."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes without killing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just someone else's
    return True


@dataclass(frozen=True)
class LockHolder:
    """Who holds a tenant's lock, and since when."""

    tenant_key: str
    user: str
    host: str
    pid: int
    operation: str
    since: str  # UTC ISO
    #: On the holder `lock()` yields: the stale lock it took over (its process was dead), if any.
    replaced: LockHolder | None = field(default=None, compare=False, repr=False)
    #: Whether the store saw the holder's session still holding the lock (PostgreSQL can
    #: tell from any host); None when only the holder's pid on this host can tell.
    alive: bool | None = field(default=None, compare=False)

    @property
    def stale(self) -> bool:
        """True when the holder is provably gone: its database session ended, or it ran on
        this host and its process is gone (a crash or kill)."""
        if self.alive is not None:
            return not self.alive
        return self.host == socket.gethostname() and not pid_alive(self.pid)

    @property
    def gone_because(self) -> str:
        """Why a stale holder is known to be gone, for messages."""
        if self.alive is False:
            return (f"its database session has ended (process {self.pid} on {self.host} "
                    "exited, was killed or lost its connection)")
        return f"process {self.pid} is no longer running on this host"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """One line naming the holder, e.g. for `lwr unlock` output and LockHeld messages."""
        return (f"{self.user}@{self.host} (pid {self.pid}) running '{self.operation}' "
                f"since {self.since}")


@dataclass(frozen=True)
class RunRecord:
    """One execution of a plan against one tenant."""

    run_id: str
    tenant_key: str
    plan_digest: str
    actor: str
    started_at: str
    finished_at: str | None
    status: RunStatus


@dataclass(frozen=True)
class JournalEntry:
    """Where one change of a run got to; `change` is kept so a crashed run can be recovered."""

    run_id: str
    change: Change
    state: EntryState
    error: str | None
    at: str

    @property
    def change_id(self) -> str:
        """The change's deterministic id."""
        return self.change.id


@dataclass(frozen=True)
class Outcome:
    """How a started journal entry ended."""

    change_id: str
    state: Literal["done", "failed"]
    error: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """An audit row as the executor hands it in; the store adds seq, time and chain hashes."""

    tenant_key: str
    domain: str
    run_id: str
    actor: str
    change_id: str
    action: str
    channel: str
    target: str | None
    before: Any
    after: Any
    result: AuditResult
    error: str | None = None

    @classmethod
    def of(cls, change: Change, *, tenant_key: str, domain: str, run_id: str, actor: str,
           result: AuditResult, error: str | None = None) -> AuditRecord:
        """The audit row for one change."""
        return cls(tenant_key=tenant_key, domain=domain, run_id=run_id, actor=actor,
                   change_id=change.id, action=change.action.value,
                   channel=change.channel.value, target=change.target,
                   before=change.before, after=change.after, result=result, error=error)


@dataclass(frozen=True, kw_only=True)
class AuditEntry(AuditRecord):
    """A stored audit row: the record plus what the store adds (order, time, chain)."""

    seq: int
    at: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """Machine form for `lwr audit --format json`: order and time first, as in the text."""
        fields = ["seq", "at", *(f for f in self.__dataclass_fields__ if f not in ("seq", "at"))]
        return {name: getattr(self, name) for name in fields}


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of recomputing the audit chain."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for hashing: sorted keys, no spaces, UTF-8 kept as is."""
    # Most before/after values are booleans: spelled directly, the same as dumps would.
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, seq: int, at: str, record: AuditRecord) -> str:
    """sha256(prev_hash + canonical JSON of the row's fields); identical in every backend.

    The fields are seq, at and every AuditRecord field, before/after as JSON values (not as
    stored text), so that a backend may store JSON its own way.
    """
    return row_hash(prev_hash, seq, at, record, canonical_json(record.before),
                    canonical_json(record.after))


def row_hash(prev_hash: str, seq: int, at: str, record: AuditRecord, before_json: str,
             after_json: str) -> str:
    """`chain_hash` with before/after already in canonical JSON (as the store writes them).

    Spells out canonical_json(fields) by hand: keys in sorted order, strings encoded exactly as
    json.dumps(ensure_ascii=False) does; three times faster, which 100k-row applies need.
    A test pins it to canonical_json.
    """
    payload = "".join((
        '{"action":', _str(record.action), ',"actor":', _str(record.actor),
        ',"after":', after_json, ',"at":', _str(at), ',"before":', before_json,
        ',"change_id":', _str(record.change_id), ',"channel":', _str(record.channel),
        ',"domain":', _str(record.domain), ',"error":', _opt(record.error),
        ',"result":', _str(record.result), ',"run_id":', _str(record.run_id),
        ',"seq":', str(int(seq)), ',"target":', _opt(record.target),
        ',"tenant_key":', _str(record.tenant_key), "}",
    ))
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def _opt(value: str | None) -> str:
    return "null" if value is None else _str(value)


class StateStore(Protocol):
    """Lock, journal and audit log for any number of tenants, keyed by the provider's `key`.

    Every method that writes commits before it returns: the journal is write-ahead.
    """

    @property
    def location(self) -> str:
        """Where the store is, for messages (a file, or a database URL without password)."""
        ...

    def schema_version(self) -> int:
        """The version of the store's schema."""
        ...

    def lock(self, tenant_key: str, operation: str) -> AbstractContextManager[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder.

        A lock whose holder is provably dead (same host, process gone) is taken over; the
        yielded holder's `replaced` names it. Any other holder is refused, never guessed at.
        """
        ...

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""
        ...

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock whoever holds it; return the holder removed, if any."""
        ...

    def begin_run(self, tenant_key: str, plan_digest: str, actor: str) -> RunRecord:
        """Record a new run in status `running`."""
        ...

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's final status and finish time."""
        ...

    def runs(self, tenant_key: str | None = None, *,
             status: RunStatus | None = None) -> list[RunRecord]:
        """Runs oldest first, optionally only one tenant's and only those in one status."""
        ...

    def last_run(self, tenant_key: str) -> RunRecord | None:
        """The tenant's most recently begun run."""
        ...

    def applied_run(self, tenant_key: str, plan_digest: str) -> RunRecord | None:
        """The tenant's latest run of this plan that finished `done`, if any (replay guard)."""
        ...

    def entries(self, run_id: str) -> list[JournalEntry]:
        """A run's journal entries in the order they were started."""
        ...

    def mark_started(self, run_id: str, changes: Sequence[Change]) -> None:
        """Journal `started` for changes about to be applied; committed before returning."""
        ...

    def complete(self, run_id: str, outcomes: Sequence[Outcome],
                 audit: Sequence[AuditRecord]) -> None:
        """Settle journal entries and append their audit rows in one transaction."""
        ...

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows to the chain in one transaction."""
        ...

    def audit_entries(self, tenant_key: str | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
        ...

    def verify_audit(self) -> VerifyResult:
        """Recompute the whole chain; report the first row that does not match."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

"""The StateStore protocol and its records: per-tenant lock, apply journal, hash-chained audit log.

Backends (store/sqlite.py, store/postgres.py; their shared SQL in store/sql.py) share these
types; the audit log's rows and hashing rule are store/chain.py, re-exported here.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from reconciler.actions import Change
from reconciler.i18n import Said
from reconciler.store.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditHead,
    AuditRecord,
    AuditResult,
    HashAlg,
    VerifyResult,
    canonical_json,
    chain_hash,
    row_hash,
    row_text,
)
from reconciler.words import utc_now as utc_now  # the journal's clock: milliseconds, Z

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditHead",
    "AuditRecord",
    "AuditResult",
    "EntryOutcome",
    "EntryState",
    "HashAlg",
    "JournalEntry",
    "LockHolder",
    "RunRecord",
    "RunStatus",
    "StateStore",
    "VerifyResult",
    "canonical_json",
    "chain_hash",
    "current_user",
    "default_actor",
    "pid_alive",
    "row_hash",
    "row_text",
    "utc_now",
]

RunStatus = Literal["running", "done", "failed", "interrupted"]
EntryState = Literal["started", "done", "failed"]


def current_user() -> str:
    """Login name of this process, without failing in containers that have no passwd entry."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}"


def default_actor() -> str:
    """Who applies: env LWR_ACTOR (a CI job sets the human behind it), else user@hostname."""
    actor = os.environ.get("LWR_ACTOR", "").strip()
    return actor or f"{current_user()}@{socket.gethostname()}"


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

    @classmethod
    def of_this_process(
        cls, tenant_key: str, operation: str, *, alive: bool | None = None
    ) -> LockHolder:
        """The holder this process would be, taking the tenant's lock now for `operation`."""
        return cls(
            tenant_key=tenant_key,
            user=current_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            operation=operation,
            since=utc_now(),
            alive=alive,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any], *, alive: bool | None = None) -> LockHolder:
        """A holder from a lock row's first six columns: tenant, user, host, pid, operation,
        since (what `values()` gives, and both backends select)."""
        tenant_key, user, host, pid, operation, since = row[:6]
        return cls(tenant_key, user, host, pid, operation, since, alive=alive)

    def values(self) -> tuple[str, str, str, int, str, str]:
        """The row a backend stores: tenant, user, host, pid, operation, since."""
        return (self.tenant_key, self.user, self.host, self.pid, self.operation, self.since)

    @property
    def stale(self) -> bool:
        """True when the holder is provably gone: its database session ended, or it ran on
        this host and its process is gone (a crash or kill)."""
        if self.alive is not None:
            return not self.alive
        return self.host == socket.gethostname() and not pid_alive(self.pid)

    @property
    def gone_because(self) -> str:
        """Why a stale holder is known to be gone, for messages (an i18n.Said)."""
        if self.alive is False:
            return Said.of(
                "its database session has ended (process {pid} on {host} "
                "exited, was killed or lost its connection)",
                pid=self.pid,
                host=self.host,
            )
        return Said.of("process {pid} is no longer running on this host", pid=self.pid)

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """One line naming the holder, e.g. for `lwr unlock` output and LockHeld messages
        (an i18n.Said)."""
        return Said.of(
            "{user}@{host} (pid {pid}) running '{operation}' since {since}",
            user=self.user,
            host=self.host,
            pid=self.pid,
            operation=self.operation,
            since=self.since,
        )


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
class EntryOutcome:
    """How a started journal entry ended."""

    change_id: str
    state: Literal["done", "failed"]
    error: str | None = None


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

    def runs(
        self, tenant_key: str | None = None, *, status: RunStatus | None = None
    ) -> list[RunRecord]:
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

    def complete(
        self, run_id: str, outcomes: Sequence[EntryOutcome], audit: Sequence[AuditRecord]
    ) -> None:
        """Settle journal entries and append their audit rows in one transaction."""
        ...

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows to the chain in one transaction."""
        ...

    def record_selection(
        self, tenant_key: str, documents: Mapping[str, bytes], run_id: str | None
    ) -> None:
        """Keep each channel's selection (reconciler/selection.py) as the last apply's."""
        ...

    def last_selection(self, tenant_key: str) -> dict[str, bytes]:
        """The last apply's selection document of each channel that has one."""
        ...

    def audit_entries(
        self, tenant_key: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
        ...

    def audit_count(self, tenant_key: str | None = None) -> int:
        """How many audit rows there are (of `tenant_key`): `lwr audit` says what it left out."""
        ...

    def verify_audit(self, anchor: AuditHead | None = None) -> VerifyResult:
        """Recompute the whole chain (HMACs with LWR_AUDIT_KEY); report the first row that
        does not match, and, with `anchor` (a head kept elsewhere), anything lost up to it."""
        ...

    def audit_head(self) -> AuditHead:
        """The newest entry's seq and hash; StateError when the store's own head disagrees."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def held_message(holder: LockHolder, other_host: str) -> Said:
    """Who holds the tenant and to wait for it; `other_host` (a msgid with {tenant} and
    {holder}) when it runs on another host, where what ends its lock depends on the store."""
    fields = {"tenant": holder.tenant_key, "holder": holder.describe()}
    if holder.host != socket.gethostname():
        return Said.of(other_host, **fields)
    return Said.of(
        "tenant {tenant} is locked by {holder}; wait for it to finish and try again", **fields
    )

"""The StateStore protocol and its records: per-tenant lock, apply journal, hash-chained audit log.

Backends (store/sqlite.py, store/postgres.py; their shared SQL in store/sql.py) share these
types and the hashing rule of the audit chain.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _str  # what dumps(ensure_ascii=False) uses
from typing import Any, Literal, Protocol

from reconciler.actions import Change
from reconciler.words import utc_now as utc_now  # the journal's clock: milliseconds, Z

RunStatus = Literal["running", "done", "failed", "interrupted"]
EntryState = Literal["started", "done", "failed"]
#: applied: lwr's own call took effect; attested: a manual step an admin confirmed doing in
#: the console; recovered: found in effect after a killed run; failed: refused or errored.
AuditResult = Literal["applied", "attested", "recovered", "failed"]

#: prev_hash of the first audit row of a store.
GENESIS_HASH = "0" * 64
#: How an entry's `hash` was made: plain sha256 (anyone can recompute it), or HMAC-SHA256 with
#: LWR_AUDIT_KEY (only a key holder can). Stored per entry (`hash_alg`), as keys come later.
HashAlg = Literal["sha256", "hmac-sha256"]


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
        """Why a stale holder is known to be gone, for messages."""
        if self.alive is False:
            return (
                f"its database session has ended (process {self.pid} on {self.host} "
                "exited, was killed or lost its connection)"
            )
        return f"process {self.pid} is no longer running on this host"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """One line naming the holder, e.g. for `lwr unlock` output and LockHeld messages."""
        return (
            f"{self.user}@{self.host} (pid {self.pid}) running '{self.operation}' "
            f"since {self.since}"
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
    def of(
        cls,
        change: Change,
        *,
        tenant_key: str,
        domain: str,
        run_id: str,
        actor: str,
        result: AuditResult,
        error: str | None = None,
    ) -> AuditRecord:
        """The audit row for one change."""
        return cls(
            tenant_key=tenant_key,
            domain=domain,
            run_id=run_id,
            actor=actor,
            change_id=change.id,
            action=change.action.value,
            channel=change.channel.value,
            target=change.target,
            before=change.before,
            after=change.after,
            result=result,
            error=error,
        )


@dataclass(frozen=True, kw_only=True)
class AuditEntry(AuditRecord):
    """A stored audit row: the record plus what the store adds (order, time, chain)."""

    seq: int
    at: str
    prev_hash: str
    hash: str
    hash_alg: HashAlg = "sha256"

    def to_json(self) -> dict[str, Any]:
        """Machine form for `lwr audit --format json`: order and time first, as in the text."""
        fields = ["seq", "at", *(f for f in self.__dataclass_fields__ if f not in ("seq", "at"))]
        return {name: getattr(self, name) for name in fields}


@dataclass(frozen=True)
class AuditHead:
    """The newest entry of a log (seq 0 and GENESIS_HASH when empty): what `lwr audit head`
    prints for a pipeline to keep outside the store, and `--verify --head` checks against."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq} {self.hash}"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of recomputing the audit chain.

    Not ok with `first_bad_seq` set: the log was changed there. Not ok without it: the log
    could not be vouched for (keyed entries and no key, or unkeyed entries under a key).
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    #: Entries whose HMAC was checked with the key.
    keyed: int = 0
    #: The seq of the kept head that was found unchanged, when one was given.
    anchored: int | None = None


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
    return row_hash(
        prev_hash, seq, at, record, canonical_json(record.before), canonical_json(record.after)
    )


def row_hash(
    prev_hash: str,
    seq: int,
    at: str,
    record: AuditRecord,
    before_json: str,
    after_json: str,
    key: hmac.HMAC | None = None,
) -> str:
    """`chain_hash` with before/after already in canonical JSON (as the store writes them).

    With `key` (an HMAC-SHA256 object holding the audit key, nothing fed yet: see
    reconciler.audit), the same text is MACed instead of hashed.
    """
    text = (prev_hash + row_text(seq, at, record, before_json, after_json)).encode("utf-8")
    if key is None:
        return hashlib.sha256(text).hexdigest()
    mac = key.copy()  # the key's padding is hashed once, not once per row
    mac.update(text)
    return mac.hexdigest()


def row_text(seq: int, at: str, record: AuditRecord, before_json: str, after_json: str) -> str:
    """Canonical JSON of the row's fields, spelled out by hand: keys in sorted order, strings
    encoded exactly as json.dumps(ensure_ascii=False) does; three times faster, which
    100k-row applies need. A test pins it to canonical_json.
    """
    return "".join(
        (
            '{"action":',
            _str(record.action),
            ',"actor":',
            _str(record.actor),
            ',"after":',
            after_json,
            ',"at":',
            _str(at),
            ',"before":',
            before_json,
            ',"change_id":',
            _str(record.change_id),
            ',"channel":',
            _str(record.channel),
            ',"domain":',
            _str(record.domain),
            ',"error":',
            _opt(record.error),
            ',"result":',
            _str(record.result),
            ',"run_id":',
            _str(record.run_id),
            ',"seq":',
            str(int(seq)),
            ',"target":',
            _opt(record.target),
            ',"tenant_key":',
            _str(record.tenant_key),
            "}",
        )
    )


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

    def audit_entries(
        self, tenant_key: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
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

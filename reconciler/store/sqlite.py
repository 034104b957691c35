"""SqliteStateStore: the StateStore in one SQLite file (WAL), serving any number of tenants.

Owns the schema and its version, the atomic tenant lock, the journal and the audit chain rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from reconciler.actions import Change
from reconciler.errors import LockHeld, StateError
from reconciler.store.base import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    AuditResult,
    EntryState,
    JournalEntry,
    LockHolder,
    Outcome,
    RunRecord,
    RunStatus,
    VerifyResult,
    canonical_json,
    current_user,
    row_hash,
    utc_now,
)

#: Bumped on every schema change; a file with a higher number was written by a newer lwr.
SCHEMA_VERSION = 1
#: "LWRS": marks the file as ours, so a tenant database given by mistake is refused untouched.
APPLICATION_ID = 0x4C575253

_SCHEMA = """
CREATE TABLE IF NOT EXISTS locks (
    tenant_key TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    operation TEXT NOT NULL,
    since TEXT NOT NULL,
    token TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    tenant_key TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    actor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted'))
);
CREATE INDEX IF NOT EXISTS runs_by_tenant ON runs (tenant_key, seq);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    change_id TEXT NOT NULL,
    change TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('started', 'done', 'failed')),
    error TEXT,
    at TEXT NOT NULL,
    UNIQUE (run_id, change_id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    tenant_key TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    change_id TEXT NOT NULL,
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('applied', 'recovered', 'failed')),
    error TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit (tenant_key, seq);
-- The chain's head, so that deleting the newest rows is detected too.
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- Append-only by construction; the hash chain catches whoever drops these triggers.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

_AUDIT_COLUMNS = ("seq, at, tenant_key, domain, run_id, actor, change_id, action, channel, "
                  "target, before, after, result, error, prev_hash, hash")
_RUN_COLUMNS = "run_id, tenant_key, plan_digest, actor, started_at, finished_at, status"


def _new_run_id() -> str:
    """Sortable by time, unique by chance: 20240501T120000Z-1a2b3c4d."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(run_id=row[0], tenant_key=row[1], plan_digest=row[2], actor=row[3],
                     started_at=row[4], finished_at=row[5], status=cast(RunStatus, row[6]))


def _holder(row: tuple[Any, ...]) -> LockHolder:
    return LockHolder(tenant_key=row[0], user=row[1], host=row[2], pid=row[3],
                      operation=row[4], since=row[5])


def _audit_entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(seq=row[0], at=row[1], tenant_key=row[2], domain=row[3], run_id=row[4],
                      actor=row[5], change_id=row[6], action=row[7], channel=row[8],
                      target=row[9], before=json.loads(row[10]), after=json.loads(row[11]),
                      result=cast(AuditResult, row[12]), error=row[13], prev_hash=row[14],
                      hash=row[15])


def lock_held_message(holder: LockHolder, *, alive: bool | None = None) -> str:
    """The LockHeld text: who holds the tenant, and whether `lwr unlock` is the way out.

    `alive`: what the tenant's lock file says (True: a live process holds it; False: nobody
    does); None when it cannot tell, and the holder's pid decides alone.
    """
    text = f"tenant {holder.tenant_key} is locked by {holder.describe()}"
    if alive is False and holder.host == socket.gethostname() and not holder.stale:
        return (text + f"; process {holder.pid} exists but does not hold the tenant's lock "
                "file, so it is not that apply (its pid was reused): `lwr unlock` clears the "
                "lock")
    if holder.stale and alive is not True:
        return (text + f"; process {holder.pid} is no longer running on this host, so the lock "
                "is stale: check the tenant with `lwr plan`, then `lwr unlock` clears it")
    if holder.host != socket.gethostname():
        return (text + "; wait for it to finish and try again (if that run died with its "
                "host, `lwr unlock` clears the lock)")
    return text + "; wait for it to finish and try again"


def _lock_cleared_message(tenant_key: str) -> str:
    return (f"tenant {tenant_key} is locked by a running lwr process on this host (its lock "
            "record was cleared with `lwr unlock` while it ran, or it is just taking or "
            "releasing the lock); wait for it to finish and try again")


class _LockFile:
    """A kernel-held lock (flock) on a per-tenant file beside the store, held with the lock row.

    The row says who holds a tenant; the lock file proves whether they still do. The kernel
    drops a flock when its process dies, whatever pid namespace (container) it ran in and
    however its pid is reused later, so a row whose holder ran on this host and whose lock
    file is free was left by a dead process and may be taken over. Taken and released only
    inside the store's write transaction, so other lockers never see the two disagree.
    `state`: "held" (ours now), "busy" (a live process holds it), "unavailable" (no flock
    here: then nothing is taken over automatically).
    """

    def __init__(self, fd: int | None, state: str) -> None:
        self._fd, self.state = fd, state

    @classmethod
    def take(cls, path: Path) -> _LockFile:
        """Try once, without waiting."""
        if sys.platform == "win32":
            return cls(None, "unavailable")
        import fcntl

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return cls(None, "unavailable")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return cls(None, "busy")
        except OSError:  # e.g. ENOLCK on a network file system
            os.close(fd)
            return cls(None, "unavailable")
        return cls(fd, "held")

    def release(self) -> None:
        """Drop the flock (closing its descriptor does); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SqliteStateStore:
    """StateStore backed by one SQLite file; safe to share between processes on one host."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 10_000) -> None:
        """Open (creating if needed) the store at `path`; raise StateError if it is unusable."""
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None,
                                         timeout=busy_timeout_ms / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state store {self.path}: {exc}") from exc
        try:
            self._setup(busy_timeout_ms)
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def _setup(self, busy_timeout_ms: int) -> None:
        with self._errors("open"):
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Reading the header first: a corrupt file fails here, before we write anything.
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            tables = self._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if app_id != APPLICATION_ID and tables:
            raise StateError(f"{self.path} is an SQLite file but not an lwr state store "
                             "(is it the tenant database?); give the state store its own file")
        if version > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer lwr (state schema {version}, "
                             f"this lwr knows up to {SCHEMA_VERSION}); upgrade lwr")
        with self._errors("open"):
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._write("create schema") as conn:
                # Another process may have created it between our check and our write lock.
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    # Not executescript: it COMMITs first, which would end our transaction.
                    for statement in _statements(_SCHEMA):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection; the store object is unusable afterwards."""
        self._conn.close()

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn sqlite3 failures into StateError naming the file (never a traceback for users)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: cannot {doing}: {exc}") from exc

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so it cannot deadlock."""
        with self._errors(doing):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- lock --------------------------------------------------------------------------------

    @contextmanager
    def lock(self, tenant_key: str, operation: str) -> Iterator[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder.

        A lock left by a dead process of this host (its lock file free, its pid gone) is
        taken over: the yielded holder's `replaced` names it. Released on any exit,
        KeyboardInterrupt included; only our own lock row is removed.
        """
        holder = LockHolder(tenant_key=tenant_key, user=current_user(),
                            host=socket.gethostname(), pid=os.getpid(), operation=operation,
                            since=utc_now())
        token = secrets.token_hex(16)
        holder, lock_file = self._acquire(holder, token)
        try:
            yield holder
        finally:
            try:
                with self._write("release the lock") as conn:
                    conn.execute("DELETE FROM locks WHERE tenant_key = ? AND token = ?",
                                 (tenant_key, token))
                    # Before COMMIT: a locker waiting on our transaction sees both gone.
                    lock_file.release()
            finally:
                lock_file.release()

    def _lock_file(self, tenant_key: str) -> Path:
        name = hashlib.sha256(tenant_key.encode("utf-8")).hexdigest()[:32]
        return self.path.parent / f"{self.path.name}.locks" / f"{name}.lock"

    def _acquire(self, holder: LockHolder, token: str) -> tuple[LockHolder, _LockFile]:
        """Insert our row, or take over a provably stale one, in one write transaction."""
        lock_file = _LockFile(None, "unavailable")
        try:
            with self._write("take the lock") as conn:
                lock_file = _LockFile.take(self._lock_file(holder.tenant_key))
                row = conn.execute(
                    "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                    "WHERE tenant_key = ?", (holder.tenant_key,)).fetchone()
                current = _holder(row) if row else None
                if lock_file.state == "busy":
                    raise LockHeld(lock_held_message(current, alive=True) if current
                                   else _lock_cleared_message(holder.tenant_key))
                if current is not None:
                    if not (lock_file.state == "held" and current.stale):
                        alive = None if lock_file.state == "unavailable" else False
                        raise LockHeld(lock_held_message(current, alive=alive))
                    conn.execute("DELETE FROM locks WHERE tenant_key = ?", (holder.tenant_key,))
                    holder = replace(holder, replaced=current)
                conn.execute(
                    "INSERT INTO locks (tenant_key, user, host, pid, operation, since, token) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (holder.tenant_key, holder.user, holder.host, holder.pid,
                     holder.operation, holder.since, token))
        except BaseException:
            lock_file.release()  # also when COMMIT itself failed
            raise
        return holder, lock_file

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""
        with self._errors("list locks"):
            rows = self._conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "ORDER BY tenant_key").fetchall()
        return [_holder(row) for row in rows]

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock whoever holds it; return the holder removed, if any."""
        with self._write("remove the lock") as conn:
            row = conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "WHERE tenant_key = ?", (tenant_key,)).fetchone()
            conn.execute("DELETE FROM locks WHERE tenant_key = ?", (tenant_key,))
        return _holder(row) if row else None

    # -- journal -----------------------------------------------------------------------------

    def begin_run(self, tenant_key: str, plan_digest: str, actor: str) -> RunRecord:
        """Record a new run in status `running`."""
        run = RunRecord(run_id=_new_run_id(), tenant_key=tenant_key, plan_digest=plan_digest,
                        actor=actor, started_at=utc_now(), finished_at=None, status="running")
        with self._write("begin a run") as conn:
            conn.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (run.run_id, run.tenant_key, run.plan_digest, run.actor,
                          run.started_at, run.finished_at, run.status))
        return run

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's final status and finish time."""
        with self._write("finish a run") as conn:
            conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                         (status, utc_now(), run_id))

    def runs(self, tenant_key: str | None = None, *,
             status: RunStatus | None = None) -> list[RunRecord]:
        """Runs oldest first, optionally only one tenant's and only those in one status."""
        where, params = _where(tenant_key=tenant_key, status=status)
        with self._errors("read runs"):
            rows = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY seq", params).fetchall()
        return [_run(row) for row in rows]

    def last_run(self, tenant_key: str) -> RunRecord | None:
        """The tenant's most recently begun run."""
        with self._errors("read runs"):
            row = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE tenant_key = ? ORDER BY seq DESC LIMIT 1",
                (tenant_key,)).fetchone()
        return _run(row) if row else None

    def applied_run(self, tenant_key: str, plan_digest: str) -> RunRecord | None:
        """The tenant's latest run of this plan that finished `done`, if any (replay guard)."""
        with self._errors("read runs"):
            row = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE tenant_key = ? AND plan_digest = ? "
                "AND status = 'done' ORDER BY seq DESC LIMIT 1",
                (tenant_key, plan_digest)).fetchone()
        return _run(row) if row else None

    def entries(self, run_id: str) -> list[JournalEntry]:
        """A run's journal entries in the order they were started."""
        with self._errors("read the journal"):
            rows = self._conn.execute(
                "SELECT change, state, error, at FROM entries WHERE run_id = ? ORDER BY seq",
                (run_id,)).fetchall()
        return [JournalEntry(run_id=run_id, change=Change.from_json(json.loads(change)),
                             state=cast(EntryState, state), error=error, at=at)
                for change, state, error, at in rows]

    def mark_started(self, run_id: str, changes: Sequence[Change]) -> None:
        """Journal `started` for changes about to be applied; committed before returning."""
        at = utc_now()
        rows = [(run_id, c.id, canonical_json(c.to_json()), at) for c in changes]
        with self._write("write the journal") as conn:
            conn.executemany(
                "INSERT INTO entries (run_id, change_id, change, state, at) "
                "VALUES (?, ?, ?, 'started', ?)", rows)

    def complete(self, run_id: str, outcomes: Sequence[Outcome],
                 audit: Sequence[AuditRecord]) -> None:
        """Settle journal entries and append their audit rows in one transaction."""
        at = utc_now()
        rows = [(o.state, o.error, at, run_id, o.change_id) for o in outcomes]
        with self._write("write the journal") as conn:
            cursor = conn.executemany(
                "UPDATE entries SET state = ?, error = ?, at = ? "
                "WHERE run_id = ? AND change_id = ?", rows)
            if cursor.rowcount != len(rows):
                # A bug, not a user error: settling what was never started would lie.
                raise StateError(f"run {run_id}: {len(rows) - cursor.rowcount} of "
                                 f"{len(rows)} settled changes were never journaled as started")
            self._append(conn, audit)

    # -- audit -------------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows to the chain in one transaction."""
        with self._write("append to the audit log") as conn:
            self._append(conn, records)

    def _append(self, conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
        """Chain `records` onto the head; the caller's write transaction makes it atomic."""
        if not records:
            return
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
        at = utc_now()
        rows = []
        for record in records:
            seq += 1
            before, after = canonical_json(record.before), canonical_json(record.after)
            digest = row_hash(prev, seq, at, record, before, after)
            rows.append((seq, at, record.tenant_key, record.domain, record.run_id, record.actor,
                         record.change_id, record.action, record.channel, record.target,
                         before, after, record.result, record.error, prev, digest))
            prev = digest
        conn.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
                     "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                     (seq, prev))

    def audit_entries(self, tenant_key: str | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
        where, params = _where(tenant_key=tenant_key)
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit {where} ORDER BY seq DESC"
        args: tuple[str | int, ...] = params
        if limit is not None:
            sql += " LIMIT ?"
            args = (*params, max(limit, 0))
        with self._errors("read the audit log"):
            rows = self._conn.execute(sql, args).fetchall()
        return [_audit_entry(row) for row in reversed(rows)]

    def verify_audit(self) -> VerifyResult:
        """Recompute the whole chain; report the first row that does not match.

        Catches edited, deleted (anywhere, the newest included), inserted and reordered rows.
        A writer who recomputes every later hash and the head is beyond a local file's reach.
        """
        with self._errors("read the audit log"):
            head = self._conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            cursor = self._conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq")
            checked, prev = 0, GENESIS_HASH
            for row in cursor:
                problem = _check_row(row, checked + 1, prev)
                if problem:
                    return VerifyResult(False, checked, checked + 1, problem)
                checked, prev = checked + 1, row[15]
        head_seq, head_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
        if (head_seq, head_hash) != (checked, prev):
            return VerifyResult(False, checked, checked + 1,
                                f"the log ends at row {checked} but its head records row "
                                f"{head_seq}: the newest rows were deleted or replaced")
        return VerifyResult(True, checked)


def _check_row(row: tuple[Any, ...], expected_seq: int, prev: str) -> str:
    """Why this stored row breaks the chain, or '' when it fits."""
    if row[0] != expected_seq:
        return f"row {expected_seq} is missing (found row {row[0]} in its place)"
    if row[14] != prev:
        return f"row {expected_seq} does not follow row {expected_seq - 1} (prev_hash differs)"
    # before/after are hashed as the canonical text we stored: any edit to them, even one
    # that keeps the JSON value, breaks the hash. Other columns must have their stored types.
    record = AuditRecord(tenant_key=row[2], domain=row[3], run_id=row[4], actor=row[5],
                         change_id=row[6], action=row[7], channel=row[8], target=row[9],
                         before=None, after=None, result=row[12], error=row[13])
    try:
        digest = row_hash(prev, row[0], row[1], record, row[10], row[11])
    except (TypeError, ValueError):
        return f"row {expected_seq} holds a value of the wrong type"
    if digest != row[15]:
        return f"row {expected_seq} was modified (its content does not match its hash)"
    return ""


def _where(**filters: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause from column=value filters, skipping the None ones."""
    used = {column: value for column, value in filters.items() if value is not None}
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(f"{c} = ?" for c in used), tuple(used.values())


def _statements(script: str) -> list[str]:
    """Split the schema script; triggers contain ';' so split on complete statements only."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.startswith("--") and not current:
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]

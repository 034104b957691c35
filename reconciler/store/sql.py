"""SqlStateStore: the journal, run records and audit chain over any DB-API connection.

Everything but the connection, the schema and the tenant lock is the same SQL in SQLite and
PostgreSQL, so it lives here once; a backend (sqlite.py, postgres.py) supplies the connection,
how a transaction begins, its error type and its lock. Statements are written with `?`
placeholders; a backend whose driver wants `%s` sets `_PARAM`.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self, cast

from reconciler.actions import Change
from reconciler.errors import StateError
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
    row_hash,
    utc_now,
)

AUDIT_COLUMNS = ("seq, at, tenant_key, domain, run_id, actor, change_id, action, channel, "
                 "target, before, after, result, error, prev_hash, hash")
RUN_COLUMNS = "run_id, tenant_key, plan_digest, actor, started_at, finished_at, status"


def new_run_id() -> str:
    """Sortable by time, unique by chance: 20240501T120000Z-1a2b3c4d."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


class SqlSession(ABC):
    """A DB-API connection in autocommit mode with explicit transactions, for any backend.

    A backend mixin (SqliteSession, PostgresSession) fills in the driver's specifics; the
    stores on top (SqlStateStore here, the attested state) write plain SQL with `?`.
    """

    #: The driver's placeholder; statements here are written with `?`.
    _PARAM: ClassVar[str] = "?"
    #: Starts a write transaction that cannot deadlock with another writer.
    _BEGIN_WRITE: ClassVar[str] = "BEGIN"
    #: Starts a read-only transaction that sees one consistent snapshot.
    _BEGIN_READ: ClassVar[str] = "BEGIN"

    _conn: Any  # a DB-API connection in autocommit mode: transactions are explicit here

    # -- what a backend supplies ---------------------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, for messages (never with a password)."""

    @abstractmethod
    def _is_db_error(self, exc: BaseException) -> bool:
        """Whether `exc` is the driver's error (turned into StateError)."""

    @abstractmethod
    def _in_transaction(self) -> bool:
        """Whether the connection has a transaction open (to roll back after a failure)."""

    # -- connection helpers --------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the store object is unusable afterwards."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _sql(self, statement: str) -> str:
        return statement if self._PARAM == "?" else statement.replace("?", self._PARAM)

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver's cursor."""
        return self._conn.execute(self._sql(statement), params)

    def _executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per row; returns how many rows it changed in all."""
        cursor = self._conn.cursor()
        try:
            cursor.executemany(self._sql(statement), rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows into `table`; a backend may use a faster bulk path (COPY)."""
        marks = ", ".join("?" * len(columns))
        self._executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn driver failures into StateError naming the store (never a traceback)."""
        try:
            yield
        except Exception as exc:
            if self._is_db_error(exc):
                raise StateError(f"state store {self.location}: cannot {doing}: {exc}") from exc
            raise

    @contextmanager
    def _transaction(self, doing: str, begin: str) -> Iterator[None]:
        with self._errors(doing):
            self._conn.execute(begin)
            try:
                yield
            except BaseException:
                if self._in_transaction():
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _write(self, doing: str) -> AbstractContextManager[None]:
        """One write transaction; committed when the block ends, rolled back on any error."""
        return self._transaction(doing, self._BEGIN_WRITE)

    def _snapshot(self, doing: str) -> AbstractContextManager[None]:
        """One read transaction: every read in it sees the same moment."""
        return self._transaction(doing, self._BEGIN_READ)

class SqlStateStore(SqlSession):
    """The StateStore methods every SQL backend shares; subclasses own connection and lock."""

    #: Reads the audit chain's head, locking it for the rest of the write transaction.
    _HEAD_FOR_UPDATE: ClassVar[str] = "SELECT seq, hash FROM audit_head WHERE id = 1"

    @abstractmethod
    def lock(self, tenant_key: str, operation: str) -> AbstractContextManager[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder."""

    @abstractmethod
    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""

    @abstractmethod
    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock record whoever holds it; return the holder removed."""

    # -- journal -------------------------------------------------------------------------------

    def begin_run(self, tenant_key: str, plan_digest: str, actor: str) -> RunRecord:
        """Record a new run in status `running`."""
        run = RunRecord(run_id=new_run_id(), tenant_key=tenant_key, plan_digest=plan_digest,
                        actor=actor, started_at=utc_now(), finished_at=None, status="running")
        with self._write("begin a run"):
            self._execute(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (run.run_id, run.tenant_key, run.plan_digest, run.actor,
                           run.started_at, run.finished_at, run.status))
        return run

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's final status and finish time."""
        with self._write("finish a run"):
            self._execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                          (status, utc_now(), run_id))

    def runs(self, tenant_key: str | None = None, *,
             status: RunStatus | None = None) -> list[RunRecord]:
        """Runs oldest first, optionally only one tenant's and only those in one status."""
        where, params = _where(tenant_key=tenant_key, status=status)
        with self._errors("read runs"):
            rows = self._execute(f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY seq",
                                 params).fetchall()
        return [_run(row) for row in rows]

    def last_run(self, tenant_key: str) -> RunRecord | None:
        """The tenant's most recently begun run."""
        with self._errors("read runs"):
            row = self._execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE tenant_key = ? "
                                "ORDER BY seq DESC LIMIT 1", (tenant_key,)).fetchone()
        return _run(row) if row else None

    def applied_run(self, tenant_key: str, plan_digest: str) -> RunRecord | None:
        """The tenant's latest run of this plan that finished `done`, if any (replay guard)."""
        with self._errors("read runs"):
            row = self._execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE tenant_key = ? AND plan_digest = ? "
                "AND status = 'done' ORDER BY seq DESC LIMIT 1",
                (tenant_key, plan_digest)).fetchone()
        return _run(row) if row else None

    def entries(self, run_id: str) -> list[JournalEntry]:
        """A run's journal entries in the order they were started."""
        with self._errors("read the journal"):
            rows = self._execute("SELECT change, state, error, at FROM entries "
                                 "WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        return [JournalEntry(run_id=run_id, change=Change.from_json(json.loads(change)),
                             state=cast(EntryState, state), error=error, at=at)
                for change, state, error, at in rows]

    def mark_started(self, run_id: str, changes: Sequence[Change]) -> None:
        """Journal `started` for changes about to be applied; committed before returning."""
        at = utc_now()
        rows = [(run_id, c.id, canonical_json(c.to_json()), "started", at) for c in changes]
        with self._write("write the journal"):
            self._insert("entries", ("run_id", "change_id", "change", "state", "at"), rows)

    def complete(self, run_id: str, outcomes: Sequence[Outcome],
                 audit: Sequence[AuditRecord]) -> None:
        """Settle journal entries and append their audit rows in one transaction."""
        with self._write("write the journal"):
            settled = self._settle(run_id, outcomes, utc_now())
            if settled != len(outcomes):
                # A bug, not a user error: settling what was never started would lie.
                raise StateError(f"run {run_id}: {len(outcomes) - settled} of {len(outcomes)} "
                                 "settled changes were never journaled as started")
            self._append(audit)

    def _settle(self, run_id: str, outcomes: Sequence[Outcome], at: str) -> int:
        """Set the outcome of started entries; returns how many rows it changed."""
        return self._executemany(
            "UPDATE entries SET state = ?, error = ?, at = ? WHERE run_id = ? AND change_id = ?",
            [(o.state, o.error, at, run_id, o.change_id) for o in outcomes])

    # -- audit ---------------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows to the chain in one transaction."""
        with self._write("append to the audit log"):
            self._append(records)

    def _append(self, records: Sequence[AuditRecord]) -> None:
        """Chain `records` onto the head; the caller's write transaction makes it atomic.

        The head is read with a lock (`_HEAD_FOR_UPDATE`), so writers of other tenants append
        one after the other and the chain stays one line across every runner.
        """
        if not records:
            return
        head = self._execute(self._HEAD_FOR_UPDATE).fetchone()
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
        self._insert("audit", AUDIT_COLUMNS.split(", "), rows)
        self._execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) "
                      "DO UPDATE SET seq = excluded.seq, hash = excluded.hash", (seq, prev))

    def audit_entries(self, tenant_key: str | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
        where, params = _where(tenant_key=tenant_key)
        statement = f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY seq DESC"
        args: tuple[str | int, ...] = params
        if limit is not None:
            statement += " LIMIT ?"
            args = (*params, max(limit, 0))
        with self._errors("read the audit log"):
            rows = self._execute(statement, args).fetchall()
        return [_audit_entry(row) for row in reversed(rows)]

    def verify_audit(self) -> VerifyResult:
        """Recompute the whole chain; report the first row that does not match.

        Catches edited, deleted (anywhere, the newest included), inserted and reordered rows.
        Reads one snapshot, so an apply appending meanwhile is not mistaken for tampering.
        A writer who recomputes every later hash and the head is beyond a hash chain's reach.
        """
        with self._snapshot("read the audit log"):
            head = self._execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            checked, prev = 0, GENESIS_HASH
            for row in self._execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"):
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


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(run_id=row[0], tenant_key=row[1], plan_digest=row[2], actor=row[3],
                     started_at=row[4], finished_at=row[5], status=cast(RunStatus, row[6]))


def _audit_entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(seq=row[0], at=row[1], tenant_key=row[2], domain=row[3], run_id=row[4],
                      actor=row[5], change_id=row[6], action=row[7], channel=row[8],
                      target=row[9], before=json.loads(row[10]), after=json.loads(row[11]),
                      result=cast(AuditResult, row[12]), error=row[13], prev_hash=row[14],
                      hash=row[15])


def _check_row(row: Sequence[Any], expected_seq: int, prev: str) -> str:
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

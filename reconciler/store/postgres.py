"""PostgresStateStore: the StateStore in a PostgreSQL database shared by every runner.

Lock, journal, runs, audit chain and (for lineworks: tenants) attested state live in one
schema (`lwr` unless the URL says `?schema=NAME`), created and upgraded only by
`lwr state migrate`. A tenant's lock is a session-level advisory lock plus a row naming its
holder: the server drops the advisory lock the moment the holder's session ends (killed,
crashed, host gone: TCP keepalives notice within about a minute), so a row whose advisory
lock is free is provably stale from any host, and is taken over. The connection is
reconciler.store.postgres_connect, the schema and its migrations reconciler.store.postgres_schema.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from reconciler.errors import LockHeld, StateError
from reconciler.i18n import N_, Said
from reconciler.store.base import EntryOutcome, LockHolder, held_message
from reconciler.store.postgres_connect import DEFAULT_SCHEMA, PostgresTarget, connect
from reconciler.store.postgres_schema import SCHEMA_VERSION, migrate, refuse_newer, version_of
from reconciler.store.sql import SqlSession, SqlStateStore

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "PostgresSession",
    "PostgresStateStore",
    "PostgresTarget",
    "lock_key",
    "migrate",
]

#: How long a loser of a lock race waits for the winner's row to be readable (to name it).
_NAME_THE_HOLDER_S = 2.0


def lock_key(tenant_key: str) -> int:
    """The tenant's advisory lock key: 64 bits of a hash (other apps' keys do not collide)."""
    digest = hashlib.sha256(b"lwr tenant lock\0" + tenant_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresSession(SqlSession):
    """The PostgreSQL specifics of a SqlSession: a connection to the state URL's schema."""

    _PARAM = "%s"
    _BEGIN_WRITE = "BEGIN"
    _BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def __init__(self, url: str) -> None:
        """Connect; raise StateError when unreachable or when the schema is missing or old."""
        self.target = PostgresTarget.parse(url)
        self._conn = connect(self.target)
        try:
            self._check_schema()
        except BaseException:
            self._conn.close()
            raise

    @property
    def location(self) -> str:
        """The database URL, without its password."""
        return self.target.display

    def _is_db_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY: one stream instead of a statement per row (five times faster at 500 rows)."""
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):  # our own names
            for row in rows:
                copy.write_row(row)

    def _in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        status = self._conn.info.transaction_status
        return status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def _check_schema(self) -> None:
        with self._errors(N_("state store {location}: cannot read the schema version: {reason}")):
            exists = self._conn.execute("SELECT to_regclass('schema_version')").fetchone()[0]
            version = self.schema_version() if exists else 0
        refuse_newer(version, self.target)
        if version < SCHEMA_VERSION:
            fields = {
                "schema": self.target.schema,
                "location": self.target.display,
                "version": version,
                "needed": SCHEMA_VERSION,
            }
            if version:
                raise StateError(
                    Said.of(
                        'the lwr state schema "{schema}" in {location} is at version {version} '
                        "(this lwr needs version {needed}): run "
                        "`lwr state migrate --state {location}` once",
                        **fields,
                    )
                )
            raise StateError(
                Said.of(
                    'the lwr state schema "{schema}" in {location} does not exist yet '
                    "(this lwr needs version {needed}): run "
                    "`lwr state migrate --state {location}` once",
                    **fields,
                )
            )

    def schema_version(self) -> int:
        """The newest migration applied to this database."""
        with self._errors(N_("state store {location}: cannot read the schema version: {reason}")):
            return version_of(self._conn)


class PostgresStateStore(PostgresSession, SqlStateStore):
    """StateStore in PostgreSQL: one store for every runner and tenant of a fleet."""

    _HEAD_FOR_UPDATE = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"

    def _settle(self, run_id: str, outcomes: Sequence[EntryOutcome], at: str) -> int:
        """One UPDATE joined to the outcomes as arrays, not a statement per entry."""
        cursor = self._conn.execute(
            "UPDATE entries e SET state = o.state, error = o.error, at = %s "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS o(change_id, state, error) "
            "WHERE e.run_id = %s AND e.change_id = o.change_id",
            (
                at,
                [o.change_id for o in outcomes],
                [o.state for o in outcomes],
                [o.error for o in outcomes],
                run_id,
            ),
        )
        return int(cursor.rowcount)

    def __init__(self, url: str) -> None:
        """Connect; raise StateError when unreachable or when the schema is missing or old."""
        super().__init__(url)
        #: Advisory keys this session holds: PostgreSQL would grant them to it again.
        self._held: set[int] = set()

    # -- lock --------------------------------------------------------------------------------

    @contextmanager
    def lock(self, tenant_key: str, operation: str) -> Iterator[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder.

        A lock whose holder's session has ended is taken over: the yielded holder's `replaced`
        names it. Released on any exit, KeyboardInterrupt included.
        """
        holder = LockHolder.of_this_process(tenant_key, operation, alive=True)
        token, key = secrets.token_hex(16), lock_key(tenant_key)
        holder = self._acquire(holder, token, key)
        try:
            yield holder
        finally:
            self._release(tenant_key, token, key)

    def _release(self, tenant_key: str, token: str, key: int) -> None:
        """Delete our row, then drop the advisory lock.

        With the session gone (connection lost) there is nothing to do: its advisory lock went
        with it, the row left behind is provably stale and the next apply takes it over, and
        raising here would only hide the error that broke the connection.
        """
        if self._conn.closed or self._conn.broken:
            self._held.discard(key)
            return
        try:
            with self._write(N_("state store {location}: cannot release the lock: {reason}")):
                self._execute(
                    "DELETE FROM locks WHERE tenant_key = ? AND token = ?", (tenant_key, token)
                )
        finally:
            self._release_advisory(key)

    def _acquire(self, holder: LockHolder, token: str, key: int) -> LockHolder:
        """Take the advisory lock, then write our row (over a stale one) in one transaction."""
        deadline = time.monotonic() + _NAME_THE_HOLDER_S
        while key in self._held or not self._try_advisory(key):
            current = self._holder_of(holder.tenant_key)
            if current is not None:
                raise LockHeld(_held_message(current))
            if time.monotonic() > deadline:
                raise LockHeld(
                    Said.of(
                        "tenant {tenant} is locked by an lwr session whose record is gone "
                        "(cleared with `lwr unlock` while it ran); wait for it to finish and "
                        "try again",
                        tenant=holder.tenant_key,
                    )
                )
            time.sleep(0.02)  # the winner has the lock but has not committed its row yet
        try:
            with self._write(N_("state store {location}: cannot take the lock: {reason}")):
                row = self._execute(
                    f"SELECT {_HOLDER_COLUMNS}, false FROM locks WHERE tenant_key = ? FOR UPDATE",
                    (holder.tenant_key,),
                ).fetchone()
                if row is not None:  # we hold its advisory lock, so its session is over
                    self._execute("DELETE FROM locks WHERE tenant_key = ?", (holder.tenant_key,))
                    holder = replace(holder, replaced=_holder(row))
                self._execute(
                    "INSERT INTO locks (tenant_key, username, host, pid, operation, since, "
                    "token, lock_key, backend_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "pg_backend_pid())",
                    (*holder.values(), token, key),
                )
        except BaseException:
            self._release_advisory(key)
            raise
        self._held.add(key)
        return holder

    def _try_advisory(self, key: int) -> bool:
        with self._errors(N_("state store {location}: cannot take the lock: {reason}")):
            return bool(self._execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])

    def _release_advisory(self, key: int) -> None:
        self._held.discard(key)
        if self._conn.broken or self._conn.closed:
            return  # the session is gone, and the server released its locks with it
        with self._errors(N_("state store {location}: cannot release the lock: {reason}")):
            self._execute("SELECT pg_advisory_unlock(?)", (key,))

    def _holder_of(self, tenant_key: str) -> LockHolder | None:
        return self._one(
            N_("state store {location}: cannot read the lock: {reason}"),
            f"SELECT {_HOLDER_COLUMNS}, {_ALIVE} FROM locks l WHERE tenant_key = ?",
            (tenant_key,),
            _holder,
        )

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, each marked alive or not by its session's advisory lock."""
        with self._errors(N_("state store {location}: cannot list locks: {reason}")):
            rows = self._execute(
                f"SELECT {_HOLDER_COLUMNS}, {_ALIVE} FROM locks l ORDER BY tenant_key"
            ).fetchall()
        return [_holder(row) for row in rows]

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock record; a live holder keeps its advisory lock (and so the
        tenant) until its session ends."""
        with self._write(N_("state store {location}: cannot remove the lock: {reason}")):
            row = self._execute(
                f"SELECT {_HOLDER_COLUMNS}, {_ALIVE} FROM locks l WHERE tenant_key = ?",
                (tenant_key,),
            ).fetchone()
            self._execute("DELETE FROM locks WHERE tenant_key = ?", (tenant_key,))
        return _holder(row) if row else None


_HOLDER_COLUMNS = "tenant_key, username, host, pid, operation, since"
#: Whether the row's session still holds its advisory lock (a bigint key shows in pg_locks as
#: classid = high 32 bits, objid = low 32 bits, objsubid = 1).
_ALIVE = """EXISTS (SELECT 1 FROM pg_locks p
    WHERE p.locktype = 'advisory' AND p.granted AND p.pid = l.backend_pid
      AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND p.classid::bigint = ((l.lock_key >> 32) & 4294967295)
      AND p.objid::bigint = (l.lock_key & 4294967295) AND p.objsubid = 1)"""


def _holder(row: Any) -> LockHolder:
    return LockHolder.from_row(row, alive=bool(row[6]))


def _held_message(holder: LockHolder) -> Said:
    """The LockHeld text: who holds the tenant, and that its lock ends with its session."""
    return held_message(
        holder,
        N_(
            "tenant {tenant} is locked by {holder}; wait for it to finish and try again (its "
            "lock ends with its database session, also if that runner dies)"
        ),
    )

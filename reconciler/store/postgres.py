"""PostgresStateStore: the StateStore in a PostgreSQL database shared by every runner.

Lock, journal, runs, audit chain and (for lineworks: tenants) attested state live in one
schema (`lwr` unless the URL says `?schema=NAME`), created and upgraded only by
`lwr state migrate`. A tenant's lock is a session-level advisory lock plus a row naming its
holder: the server drops the advisory lock the moment the holder's session ends (killed,
crashed, host gone: TCP keepalives notice within about a minute), so a row whose advisory
lock is free is provably stale from any host, and is taken over.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.errors import LockHeld, StateError
from reconciler.store.base import GENESIS_HASH, EntryOutcome, LockHolder
from reconciler.store.sql import SqlSession, SqlStateStore
from reconciler.uris import redact, scrub, split_postgres_url

if TYPE_CHECKING:
    import psycopg

#: Bumped with every entry of MIGRATIONS.
SCHEMA_VERSION = 3
DEFAULT_SCHEMA = "lwr"
#: Advisory lock key taken (per transaction) while migrating, so two migrations never overlap.
_MIGRATE_LOCK = 0x4C57_5253_0000_0001
#: How long a loser of a lock race waits for the winner's row to be readable (to name it).
_NAME_THE_HOLDER_S = 2.0

#: (version, statements): applied in order, each version once, in one transaction.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE locks (
        tenant_key text PRIMARY KEY,
        username text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        operation text NOT NULL,
        since text NOT NULL,
        token text NOT NULL,
        lock_key bigint NOT NULL,
        backend_pid integer NOT NULL)""",
            """CREATE TABLE runs (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL UNIQUE,
        tenant_key text NOT NULL,
        plan_digest text NOT NULL,
        actor text NOT NULL,
        started_at text NOT NULL,
        finished_at text,
        status text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')))""",
            "CREATE INDEX runs_by_tenant ON runs (tenant_key, seq)",
            """CREATE TABLE entries (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs (run_id),
        change_id text NOT NULL,
        change text NOT NULL,
        state text NOT NULL CHECK (state IN ('started', 'done', 'failed')),
        error text,
        at text NOT NULL,
        UNIQUE (run_id, change_id))""",
            """CREATE TABLE audit (
        seq bigint PRIMARY KEY,
        at text NOT NULL,
        tenant_key text NOT NULL,
        domain text NOT NULL,
        run_id text NOT NULL,
        actor text NOT NULL,
        change_id text NOT NULL,
        action text NOT NULL,
        channel text NOT NULL,
        target text,
        before text NOT NULL,
        after text NOT NULL,
        result text NOT NULL CHECK (result IN ('applied', 'recovered', 'failed')),
        error text,
        prev_hash text NOT NULL,
        hash text NOT NULL)""",
            "CREATE INDEX audit_by_tenant ON audit (tenant_key, seq)",
            # The chain's head exists from the start: appenders lock it (FOR UPDATE) to take turns.
            """CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL)""",
            f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
            # Append-only by construction; the hash chain catches whoever drops these triggers.
            """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
            """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
            """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
            # What lwr knows of a lineworks: tenant but cannot read (store/attested.py).
            """CREATE TABLE attested_settings (
        tenant text NOT NULL, channel text NOT NULL, field text NOT NULL,
        value text NOT NULL, source text NOT NULL, actor text NOT NULL, at text NOT NULL,
        PRIMARY KEY (tenant, channel, field))""",
            """CREATE TABLE attested_members (
        tenant text NOT NULL, channel text NOT NULL, email text NOT NULL,
        source text NOT NULL, at text NOT NULL,
        PRIMARY KEY (tenant, channel, email))""",
        ),
    ),
    (
        2,
        (
            # Audit results may be `attested`: a manual step an admin confirmed doing in the
            # console.
            "ALTER TABLE audit DROP CONSTRAINT audit_result_check",
            """ALTER TABLE audit ADD CONSTRAINT audit_result_check
        CHECK (result IN ('applied', 'attested', 'recovered', 'failed'))""",
        ),
    ),
    (
        3,
        (
            # An entry's hash may be an HMAC with LWR_AUDIT_KEY (reconciler/audit.py); older entries
            # are plain sha256, their hashes unchanged. ALTER TABLE fires no row trigger.
            """ALTER TABLE audit ADD COLUMN hash_alg text NOT NULL DEFAULT 'sha256'
        CHECK (hash_alg IN ('sha256', 'hmac-sha256'))""",
        ),
    ),
)


@dataclass(frozen=True)
class PostgresTarget:
    """A state URL taken apart: what libpq connects to, and lwr's own `schema` parameter."""

    conninfo: str
    schema: str
    display: str  # the URL without its password, for messages

    def scrub(self, text: str) -> str:
        """A driver's message fit to print: libpq may quote a piece of the URL it rejects."""
        return scrub(text, self.conninfo)

    @classmethod
    def parse(cls, url: str) -> PostgresTarget:
        """Split `postgresql://user:pw@host:port/db?schema=NAME&sslmode=…` (reconciler.uris):
        UsageError for a URL that cannot be read unambiguously, StateError naming the rule for
        a bad schema name."""
        conninfo, schema = split_postgres_url(url)
        schema = DEFAULT_SCHEMA if schema is None else schema
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StateError(
                f"state URL {redact(url)}: schema {schema!r} must be lower-case "
                "letters, digits and _ (at most 63), not starting with a digit"
            )
        return cls(conninfo, schema, redact(url))


def lock_key(tenant_key: str) -> int:
    """The tenant's advisory lock key: 64 bits of a hash (other apps' keys do not collide)."""
    digest = hashlib.sha256(b"lwr tenant lock\0" + tenant_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _connect(target: PostgresTarget) -> psycopg.Connection[Any]:
    """An autocommit session (transactions are explicit) whose death the server notices."""
    try:
        import psycopg
    except ImportError as exc:
        raise StateError(
            "a postgresql:// state needs psycopg 3: pip install 'lineworks-reconciler[postgresql]'"
        ) from exc
    try:
        conn = psycopg.connect(
            target.conninfo,
            autocommit=True,
            connect_timeout=10,
            application_name="lwr",
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        raise StateError(
            f"cannot connect to the state database {target.display}: "
            f"{target.scrub(str(exc).strip())}"
        ) from exc
    try:
        # The server side of the keepalives: a runner whose host vanished loses its session,
        # and so its lock, within about a minute instead of the kernel's two hours.
        for setting, value in (
            ("tcp_keepalives_idle", 30),
            ("tcp_keepalives_interval", 10),
            ("tcp_keepalives_count", 3),
        ):
            conn.execute(f"SET {setting} = {value}")
        conn.execute(f'SET search_path TO "{target.schema}"')
    except psycopg.Error as exc:
        conn.close()
        raise StateError(
            f"state database {target.display}: {target.scrub(str(exc).strip())}"
        ) from exc
    return conn


def migrate(url: str, up_to: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Create or upgrade the state schema at `url` (up to version `up_to`: older ones are for
    testing upgrades); returns (version before, version after).

    Idempotent, and safe to run from several runners at once: an advisory lock makes them take
    turns and each migration commits with its version row.
    """
    target = PostgresTarget.parse(url)
    conn = _connect(target)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now(),
                lwr_version text NOT NULL)""")
            before = _version(conn)
            _refuse_newer(before, target)
            for version, statements in MIGRATIONS:
                if before < version <= up_to:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, lwr_version) VALUES (%s, %s)",
                        (version, __version__),
                    )
        return before, _version(conn)
    except Exception as exc:
        _raise_state_error(exc, target, "migrate")
        raise
    finally:
        conn.close()


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _refuse_newer(version: int, target: PostgresTarget) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            f"the state schema in {target.display} is version {version}, written "
            f"by a newer lwr (this one knows up to {SCHEMA_VERSION}); upgrade lwr"
        )


def _raise_state_error(exc: BaseException, target: PostgresTarget, doing: str) -> None:
    import psycopg

    if isinstance(exc, psycopg.Error):
        raise StateError(
            f"state database {target.display}: cannot {doing}: {target.scrub(str(exc).strip())}"
        ) from exc


class PostgresSession(SqlSession):
    """The PostgreSQL specifics of a SqlSession: a connection to the state URL's schema."""

    _PARAM = "%s"
    _BEGIN_WRITE = "BEGIN"
    _BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def __init__(self, url: str) -> None:
        """Connect; raise StateError when unreachable or when the schema is missing or old."""
        self.target = PostgresTarget.parse(url)
        self._conn = _connect(self.target)
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
        with self._errors("read the schema version"):
            exists = self._conn.execute("SELECT to_regclass('schema_version')").fetchone()[0]
            version = self.schema_version() if exists else 0
        _refuse_newer(version, self.target)
        if version < SCHEMA_VERSION:
            state = f"is at version {version}" if version else "does not exist yet"
            raise StateError(
                f'the lwr state schema "{self.target.schema}" in {self.target.display} '
                f"{state} (this lwr needs version {SCHEMA_VERSION}): run "
                f"`lwr state migrate --state {self.target.display}` once"
            )

    def schema_version(self) -> int:
        """The newest migration applied to this database."""
        with self._errors("read the schema version"):
            return _version(self._conn)


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
            with self._write("release the lock"):
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
                    f"tenant {holder.tenant_key} is locked by an lwr session whose "
                    "record is gone (cleared with `lwr unlock` while it ran); wait "
                    "for it to finish and try again"
                )
            time.sleep(0.02)  # the winner has the lock but has not committed its row yet
        try:
            with self._write("take the lock"):
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
        with self._errors("take the lock"):
            return bool(self._execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])

    def _release_advisory(self, key: int) -> None:
        self._held.discard(key)
        if self._conn.broken or self._conn.closed:
            return  # the session is gone, and the server released its locks with it
        with self._errors("release the lock"):
            self._execute("SELECT pg_advisory_unlock(?)", (key,))

    def _holder_of(self, tenant_key: str) -> LockHolder | None:
        with self._errors("read the lock"):
            row = self._execute(
                f"SELECT {_HOLDER_COLUMNS}, {_ALIVE} FROM locks l WHERE tenant_key = ?",
                (tenant_key,),
            ).fetchone()
        return _holder(row) if row else None

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, each marked alive or not by its session's advisory lock."""
        with self._errors("list locks"):
            rows = self._execute(
                f"SELECT {_HOLDER_COLUMNS}, {_ALIVE} FROM locks l ORDER BY tenant_key"
            ).fetchall()
        return [_holder(row) for row in rows]

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock record; a live holder keeps its advisory lock (and so the
        tenant) until its session ends."""
        with self._write("remove the lock"):
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


def _held_message(holder: LockHolder) -> str:
    text = f"tenant {holder.tenant_key} is locked by {holder.describe()}"
    if holder.host != socket.gethostname():
        return text + (
            "; wait for it to finish and try again (its lock ends with its "
            "database session, also if that runner dies)"
        )
    return text + "; wait for it to finish and try again"

"""SqliteStateStore: the StateStore in one SQLite file (WAL), serving any number of tenants.

Owns the schema and its version, the atomic tenant lock, the journal and the audit chain rows.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.errors import LockHeld, StateError
from reconciler.sqlite_files import (
    PRIVATE_FILE,
    FileStamp,
    changed_since,
    connect_readonly,
    create_private,
    damage_advice,
    make_private_dir,
    schema_gaps,
    tables_of,
)
from reconciler.store.base import LockHolder
from reconciler.store.sql import SqlSession, SqlStateStore

#: Bumped on every schema change; a file with a higher number was written by a newer lwr.
SCHEMA_VERSION = 3
#: "LWRS": marks the file as ours, so a tenant database given by mistake is refused untouched.
APPLICATION_ID = 0x4C575253


def _audit_table(name: str, results: tuple[str, ...]) -> str:
    """The audit table's CREATE statement, whose allowed `result`s grew with version 2."""
    allowed = ", ".join(f"'{r}'" for r in results)
    return f"""CREATE TABLE {name} (
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
    result TEXT NOT NULL CHECK (result IN ({allowed})),
    error TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);"""


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
{audit_v1}
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
""".replace("{audit_v1}", _audit_table("IF NOT EXISTS audit", ("applied", "recovered", "failed")))

#: Version 2: audit results may be `attested` (a manual step an admin confirmed doing in the
#: console). SQLite cannot change a CHECK in place, so the table is rebuilt; rows, and so
#: their hashes, are copied unchanged.
_V2 = """
{audit_v2}
INSERT INTO audit_v2 SELECT * FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v2 RENAME TO audit;
CREATE INDEX audit_by_tenant ON audit (tenant_key, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
""".replace("{audit_v2}", _audit_table("audit_v2", ("applied", "attested", "recovered", "failed")))

#: Version 3: an entry's hash may be an HMAC with LWR_AUDIT_KEY (reconciler/audit.py); older
#: entries are plain sha256, their hashes unchanged. ADD COLUMN fires no UPDATE trigger.
_V3 = """
ALTER TABLE audit ADD COLUMN hash_alg TEXT NOT NULL DEFAULT 'sha256'
    CHECK (hash_alg IN ('sha256', 'hmac-sha256'));
"""

#: (version, script): each applied once, in order, in the transaction that sets user_version.
_MIGRATIONS = ((1, _SCHEMA), (2, _V2), (3, _V3))


def _holder(row: tuple[Any, ...]) -> LockHolder:
    return LockHolder.from_row(row)


def lock_held_message(holder: LockHolder, *, alive: bool | None = None) -> str:
    """The LockHeld text: who holds the tenant, and whether `lwr unlock` is the way out.

    `alive`: what the tenant's lock file says (True: a live process holds it; False: nobody
    does); None when it cannot tell, and the holder's pid decides alone.
    """
    text = f"tenant {holder.tenant_key} is locked by {holder.describe()}"
    if alive is False and holder.host == socket.gethostname() and not holder.stale:
        return (
            text + f"; process {holder.pid} exists but does not hold the tenant's lock "
            "file, so it is not that apply (its pid was reused): `lwr unlock` clears the "
            "lock"
        )
    if holder.stale and alive is not True:
        return (
            text + f"; process {holder.pid} is no longer running on this host, so the lock "
            "is stale: check the tenant with `lwr plan`, then `lwr unlock` clears it"
        )
    if holder.host != socket.gethostname():
        return (
            text + "; wait for it to finish and try again (if that run died with its "
            "host, `lwr unlock` clears the lock)"
        )
    return text + "; wait for it to finish and try again"


def _lock_cleared_message(tenant_key: str) -> str:
    return (
        f"tenant {tenant_key} is locked by a running lwr process on this host (its lock "
        "record was cleared with `lwr unlock` while it ran, or it is just taking or "
        "releasing the lock); wait for it to finish and try again"
    )


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
    def take(cls, path: Path, *, wait: bool = False) -> _LockFile:
        """Try once, without waiting; with `wait`, block until no other process holds it."""
        if sys.platform == "win32":
            return cls(None, "unavailable")
        import fcntl

        try:
            make_private_dir(path.parent)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except OSError:
            return cls(None, "unavailable")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
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


class SqliteSession(SqlSession):
    """The SQLite specifics of a SqlSession: one file, `self.path`."""

    _BEGIN_WRITE = "BEGIN IMMEDIATE"  # takes the write lock up front: no upgrade deadlock
    _BEGIN_READ = "BEGIN"  # in WAL mode a read transaction sees one snapshot
    path: Path

    @property
    def location(self) -> str:
        """The store's file."""
        return str(self.path)

    def _is_db_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def _in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)


class SqliteStateStore(SqliteSession, SqlStateStore):
    """StateStore backed by one SQLite file; safe to share between processes on one host."""

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 10_000, readonly: bool = False
    ) -> None:
        """Open (creating if needed) the store at `path`; raise StateError if it is unusable.

        `readonly` (the read-only commands): the store must exist; nothing is written or
        created, not even SQLite's side files, so it works on read-only files and directories.
        """
        self.path = Path(path)
        self._stamp: FileStamp | None = None
        if readonly:
            self._open_readonly(busy_timeout_ms)
            return
        try:
            make_private_dir(self.path.parent)
            create_private(self.path)  # owner-only from the first byte, its -wal/-shm too
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=busy_timeout_ms / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state store {self.path}: {exc}") from exc
        try:
            # Openers of a store take turns on this lock while they check and create it.
            setup_lock = _LockFile.take(self._lock_dir / "setup.lock", wait=True)
            try:
                self._setup(busy_timeout_ms)
            finally:
                setup_lock.release()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def _open_readonly(self, busy_timeout_ms: int) -> None:
        if not self.path.is_file():
            raise StateError(
                f"no state store at {self.path}: nothing was applied through it "
                "(check --state / LWR_STATE, or the tenant's path)"
            )
        try:
            self._conn, self._stamp = connect_readonly(self.path, busy_timeout_ms / 1000)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state store {self.path}: {exc}") from exc
        try:
            with self._errors("open"):
                self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            version = self._check_header()
            if version < 1:
                raise StateError(
                    f"state store {self.path} is incomplete: it was created but "
                    "never set up (a run was killed at its start); "
                    "`lwr state migrate` sets it up"
                )
            self._check_schema()
        except BaseException:
            self._conn.close()
            raise

    def _check_header(self) -> int:
        """The file's schema version, once it is known to be an lwr store lwr can read."""
        with self._errors("open"):
            # Reading the header first: a corrupt file fails here, before we write anything.
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            tables = self._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        if app_id != APPLICATION_ID and tables:
            raise StateError(
                f"{self.path} is an SQLite file but not an lwr state store "
                "(is it the tenant database?); give the state store its own file"
            )
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path} was written by a newer lwr (state schema {version}, "
                f"this lwr knows up to {SCHEMA_VERSION}); upgrade lwr"
            )
        return version

    def _check_schema(self) -> None:
        """Every table and column lwr uses is there, before anything (a tenant) is changed.

        Without it an apply would change the tenant and only then fail to journal or audit it.
        """
        with self._errors("read the schema"):
            have = tables_of(self._conn)
        missing = schema_gaps(_expected_tables(), have)
        if missing:
            raise StateError(
                f"state store {self.path} is incomplete: {'; '.join(missing)} (damaged or "
                "edited by hand); nothing was changed. Restore it from a backup; or move it "
                "away, with any -wal beside it, to start a new one (the lock, journal and "
                "audit history stay in the moved file)"
            )

    def _setup(self, busy_timeout_ms: int) -> None:
        """Check the header, switch to WAL and create the schema; under the setup lock.

        Runners opening a store that does not exist yet would otherwise race: switching to
        WAL does not wait on a busy file, and a half-created store looks like a foreign one.
        """
        with self._errors("open"):
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        version = self._check_header()
        with self._errors("open"):
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._write("migrate the schema"):
                # Again inside the write lock: where flock is missing, another opener may
                # have migrated meanwhile.
                current = self._conn.execute("PRAGMA user_version").fetchone()[0]
                # Not executescript: it COMMITs first, which would end our transaction.
                for number, script in _MIGRATIONS:
                    if number > current:
                        for statement in _statements(script):
                            self._conn.execute(statement)
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._check_schema()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """As SqlSession's; a read-only store opened `immutable` also proves after each
        statement that no writer changed the file meanwhile."""
        try:
            with super()._errors(doing):
                yield
        except StateError as exc:
            self._check_unchanged()
            advice = _advice(exc, self.path)
            if advice:
                raise StateError(f"{exc}{advice}") from exc.__cause__
            raise
        self._check_unchanged()

    def _check_unchanged(self) -> None:
        if changed_since(self._stamp, self.path):
            raise StateError(
                f"state store {self.path} was changed by another process while "
                "it was read; run the command again"
            )

    @staticmethod
    def file_version(path: Path) -> int:
        """The schema version of the file at `path` without changing it (0: none yet)."""
        if not path.exists():
            return 0
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                return int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the state store {path}: {exc}") from exc

    def schema_version(self) -> int:
        """The schema version of the file (SCHEMA_VERSION once opened)."""
        with self._errors("read the schema version"):
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- lock --------------------------------------------------------------------------------

    @contextmanager
    def lock(self, tenant_key: str, operation: str) -> Iterator[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder.

        A lock left by a dead process of this host (its lock file free, its pid gone) is
        taken over: the yielded holder's `replaced` names it. Released on any exit,
        KeyboardInterrupt included; only our own lock row is removed.
        """
        holder = LockHolder.of_this_process(tenant_key, operation)
        token = secrets.token_hex(16)
        holder, lock_file = self._acquire(holder, token)
        try:
            yield holder
        except BaseException:
            # What stopped the run is the error to show. On a full disk deleting our row
            # fails too; the row it leaves is provably stale once we exit (our lock file is
            # free, our pid gone), so the next apply takes it over.
            with suppress(StateError):
                self._release(tenant_key, token, lock_file)
            raise
        self._release(tenant_key, token, lock_file)

    def _release(self, tenant_key: str, token: str, lock_file: _LockFile) -> None:
        """Delete our lock row and drop the lock file, the latter whatever happens."""
        try:
            with self._write("release the lock"):
                self._conn.execute(
                    "DELETE FROM locks WHERE tenant_key = ? AND token = ?", (tenant_key, token)
                )
                # Before COMMIT: a locker waiting on our transaction sees both gone.
                lock_file.release()
        finally:
            lock_file.release()

    @property
    def _lock_dir(self) -> Path:
        return self.path.parent / f"{self.path.name}.locks"

    def _lock_file(self, tenant_key: str) -> Path:
        name = hashlib.sha256(tenant_key.encode("utf-8")).hexdigest()[:32]
        return self._lock_dir / f"{name}.lock"

    def _acquire(self, holder: LockHolder, token: str) -> tuple[LockHolder, _LockFile]:
        """Insert our row, or take over a provably stale one, in one write transaction."""
        lock_file = _LockFile(None, "unavailable")
        try:
            with self._write("take the lock"):
                lock_file = _LockFile.take(self._lock_file(holder.tenant_key))
                row = self._conn.execute(
                    "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                    "WHERE tenant_key = ?",
                    (holder.tenant_key,),
                ).fetchone()
                current = _holder(row) if row else None
                if lock_file.state == "busy":
                    raise LockHeld(
                        lock_held_message(current, alive=True)
                        if current
                        else _lock_cleared_message(holder.tenant_key)
                    )
                if current is not None:
                    if not (lock_file.state == "held" and current.stale):
                        alive = None if lock_file.state == "unavailable" else False
                        raise LockHeld(lock_held_message(current, alive=alive))
                    self._conn.execute(
                        "DELETE FROM locks WHERE tenant_key = ?", (holder.tenant_key,)
                    )
                    holder = replace(holder, replaced=current)
                self._conn.execute(
                    "INSERT INTO locks (tenant_key, user, host, pid, operation, since, token) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*holder.values(), token),
                )
        except BaseException:
            lock_file.release()  # also when COMMIT itself failed
            raise
        return holder, lock_file

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""
        with self._errors("list locks"):
            rows = self._conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "ORDER BY tenant_key"
            ).fetchall()
        return [_holder(row) for row in rows]

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock whoever holds it; return the holder removed, if any."""
        with self._write("remove the lock"):
            row = self._conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "WHERE tenant_key = ?",
                (tenant_key,),
            ).fetchone()
            self._conn.execute("DELETE FROM locks WHERE tenant_key = ?", (tenant_key,))
        return _holder(row) if row else None


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


def _expected_tables() -> dict[str, tuple[str, ...]]:
    """The tables and columns of a store this lwr made: its migrations run on an empty one."""
    with closing(sqlite3.connect(":memory:")) as conn:
        for _, script in _MIGRATIONS:
            for statement in _statements(script):
                conn.execute(statement)
        return tables_of(conn)


def _advice(exc: StateError, path: Path) -> str:
    """What to do about a store SQLite calls damaged; '' for other errors."""
    text = str(exc)
    if "malformed" in text or "not a database" in text:
        return f"; the state store is damaged: {damage_advice(path)}"
    if "readonly" in text:
        return f"; this command needs write access to {path} and its directory"
    return ""

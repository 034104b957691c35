"""SqliteStateStore: the StateStore in one SQLite file (WAL), serving any number of tenants.

Owns opening, checking and setting up the file; its schema is reconciler.store.sqlite_schema,
its tenant lock reconciler.store.sqlite_lock, the journal and audit SQL reconciler.store.sql.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from reconciler.errors import StateError
from reconciler.i18n import N_, Said, Told, say
from reconciler.sqlite_files import (
    FileStamp,
    Trouble,
    advised,
    changed_since,
    connect_readonly,
    create_private,
    make_private_dir,
    schema_gaps,
    tables_of,
)
from reconciler.store.sql import SqlSession, SqlStateStore
from reconciler.store.sqlite_lock import LockFile, SqliteLocking
from reconciler.store.sqlite_schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    expected_tables,
    statements,
)

__all__ = ["SCHEMA_VERSION", "SqliteSession", "SqliteStateStore"]

_SELECTIONS_SINCE = 4  # the schema version that made the selections table


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


class SqliteStateStore(SqliteSession, SqliteLocking, SqlStateStore):
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
        self._version = SCHEMA_VERSION
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
            raise _cannot_open(self.path, exc) from exc
        try:
            # Openers of a store take turns on this lock while they check and create it.
            setup_lock = LockFile.take(self._lock_dir / "setup.lock", wait=True)
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
                Said.of(
                    "no state store at {path}: nothing was applied through it "
                    "(check --state / LWR_STATE, or the tenant's path)",
                    path=str(self.path),
                )
            )
        try:
            self._conn, self._stamp = connect_readonly(self.path, busy_timeout_ms / 1000)
        except sqlite3.Error as exc:
            raise _cannot_open(self.path, exc) from exc
        try:
            with self._errors(N_("state store {location}: cannot open: {reason}")):
                self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            version = self._check_header()
            if version < 1:
                raise StateError(
                    Said.of(
                        "state store {path} is incomplete: it was created but never set up "
                        "(a run was killed at its start); `lwr state migrate` sets it up",
                        path=str(self.path),
                    )
                )
            # Read-only, an older store is read as it is: what it lacks reads as nothing.
            self._version = version
            self._check_schema(version)
        except BaseException:
            self._conn.close()
            raise

    def _check_header(self) -> int:
        """The file's schema version, once it is known to be an lwr store lwr can read."""
        with self._errors(N_("state store {location}: cannot open: {reason}")):
            # Reading the header first: a corrupt file fails here, before we write anything.
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            tables = self._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        if app_id != APPLICATION_ID and tables:
            raise StateError(
                Said.of(
                    "{path} is an SQLite file but not an lwr state store "
                    "(is it the tenant database?); give the state store its own file",
                    path=str(self.path),
                )
            )
        if version > SCHEMA_VERSION:
            raise StateError(
                Said.of(
                    "{path} was written by a newer lwr (state schema {version}, "
                    "this lwr knows up to {known}); upgrade lwr",
                    path=str(self.path),
                    version=version,
                    known=SCHEMA_VERSION,
                )
            )
        return version

    def _check_schema(self, version: int = SCHEMA_VERSION) -> None:
        """Every table and column lwr uses is there, before anything (a tenant) is changed.

        Without it an apply would change the tenant and only then fail to journal or audit it.
        """
        with self._errors(N_("state store {location}: cannot read the schema: {reason}")):
            have = tables_of(self._conn)
        missing = schema_gaps(expected_tables(version), have)
        if missing:
            raise StateError(
                Said.of(
                    "state store {path} is incomplete: {missing} (damaged or edited by "
                    "hand); nothing was changed. Restore it from a backup; or move it away, "
                    "with any -wal beside it, to start a new one (the lock, journal and audit "
                    "history stay in the moved file)",
                    path=str(self.path),
                    missing=Told(lambda t: t._("; ").join(say(gap, t) for gap in missing)),
                )
            )

    def _setup(self, busy_timeout_ms: int) -> None:
        """Check the header, switch to WAL and create the schema; under the setup lock.

        Runners opening a store that does not exist yet would otherwise race: switching to
        WAL does not wait on a busy file, and a half-created store looks like a foreign one.
        """
        with self._errors(N_("state store {location}: cannot open: {reason}")):
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        version = self._check_header()
        with self._errors(N_("state store {location}: cannot open: {reason}")):
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._write(N_("state store {location}: cannot migrate the schema: {reason}")):
                # Again inside the write lock: where flock is missing, another opener may
                # have migrated meanwhile.
                current = self._conn.execute("PRAGMA user_version").fetchone()[0]
                # Not executescript: it COMMITs first, which would end our transaction.
                for number, script in MIGRATIONS:
                    if number > current:
                        for statement in statements(script):
                            self._conn.execute(statement)
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._check_schema()

    @contextmanager
    def _errors(self, failed: str) -> Iterator[None]:
        """As SqlSession's; a read-only store opened `immutable` also proves after each
        statement that no writer changed the file meanwhile."""
        try:
            with super()._errors(failed):
                yield
        except StateError as exc:
            self._check_unchanged()
            advised = _advised(exc, self.path)
            if advised is not None:
                raise StateError(advised) from exc.__cause__
            raise
        self._check_unchanged()

    def _check_unchanged(self) -> None:
        if changed_since(self._stamp, self.path):
            raise StateError(
                Said.of(
                    "state store {path} was changed by another process while it was read; "
                    "run the command again",
                    path=str(self.path),
                )
            )

    def last_selection(self, tenant_key: str) -> dict[str, bytes]:
        """As SqlStateStore's; nothing for a store older than the selections (read-only)."""
        if self._version < _SELECTIONS_SINCE:
            return {}
        return super().last_selection(tenant_key)

    @staticmethod
    def file_version(path: Path) -> int:
        """The schema version of the file at `path` without changing it (0: none yet)."""
        if not path.exists():
            return 0
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                return int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StateError(
                Said.of(
                    "cannot read the state store {path}: {reason}", path=str(path), reason=str(exc)
                )
            ) from exc

    def schema_version(self) -> int:
        """The schema version of the file (SCHEMA_VERSION once opened)."""
        with self._errors(N_("state store {location}: cannot read the schema version: {reason}")):
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])


def _advised(exc: StateError, path: Path) -> Said | None:
    """The error with what to do about it, for a store SQLite calls damaged or read-only;
    None for other errors. The error (said in any language) is a field of the advice."""
    return advised(exc.args[0], path, _TROUBLE)


#: The advice for a store SQLite calls damaged or read-only (a busy store waits instead).
_TROUBLE: dict[Trouble, str] = {
    "damaged": N_("{error}; the state store is damaged: {advice}"),
    "readonly": N_("{error}; this command needs write access to {path} and its directory"),
}


def _cannot_open(path: object, exc: Exception) -> StateError:
    """Why the store at `path` could not be opened, in any language (reconciler.i18n)."""
    return StateError(
        Said.of("cannot open the state store {path}: {reason}", path=str(path), reason=str(exc))
    )

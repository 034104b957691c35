"""SqlSession: a DB-API connection with explicit transactions, the same for every backend.

A backend mixin (SqliteSession, PostgresSession) fills in the driver's specifics: where the
store is, its error type, how a transaction begins; the stores on top (SqlStateStore, the
attested state) write plain SQL with `?` placeholders, and a driver that wants `%s` sets
`_PARAM`. Driver failures become StateError naming the store, never a traceback.

Each step names its failure as one whole message (`failed`, marked with `N_`): a msgid with
`{location}` and `{reason}`, e.g. "state store {location}: cannot take the lock: {reason}", so
that it is translated as one sentence (reconciler/i18n.py) and the driver's reason is put in as
it comes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, TypeVar

from reconciler.closing import Closing
from reconciler.errors import StateError
from reconciler.i18n import Said

__all__ = ["SqlSession"]


T = TypeVar("T")


class SqlSession(Closing, ABC):
    """A DB-API connection in autocommit mode with explicit transactions, for any backend.

    A backend mixin (SqliteSession, PostgresSession) fills in the driver's specifics; the
    stores on top (SqlStateStore, the attested state) write plain SQL with `?`.
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

    def _sql(self, statement: str) -> str:
        return statement if self._PARAM == "?" else statement.replace("?", self._PARAM)

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver's cursor."""
        return self._conn.execute(self._sql(statement), params)

    def _one(
        self, failed: str, statement: str, params: Sequence[Any], record: Callable[[Any], T]
    ) -> T | None:
        """The first row `statement` selects, as `record(row)`; None when there is none."""
        with self._errors(failed):
            row = self._execute(statement, params).fetchone()
        return record(row) if row else None

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
    def _errors(self, failed: str) -> Iterator[None]:
        """Turn driver failures into StateError naming the store (never a traceback):
        `failed` is the message (a msgid with {location} and {reason}), said in any language."""
        try:
            yield
        except Exception as exc:
            if self._is_db_error(exc):
                raise StateError(Said.of(failed, location=self.location, reason=str(exc))) from exc
            raise

    @contextmanager
    def _transaction(self, failed: str, begin: str) -> Iterator[None]:
        with self._errors(failed):
            self._conn.execute(begin)
            try:
                yield
            except BaseException:
                if self._in_transaction():
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _write(self, failed: str) -> AbstractContextManager[None]:
        """One write transaction; committed when the block ends, rolled back on any error
        (`failed`: the message of a driver failure, as for `_errors`)."""
        return self._transaction(failed, self._BEGIN_WRITE)

    def _snapshot(self, failed: str) -> AbstractContextManager[None]:
        """One read transaction: every read in it sees the same moment."""
        return self._transaction(failed, self._BEGIN_READ)

"""What only the SQLite state store does: its file, its header, and a lock judged by pid.

The behaviour every backend shares is tested in test_store.py.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import pytest
from test_store import KEY, at_once, record

from reconciler.errors import LockHeld, StateError
from reconciler.store.sqlite import SCHEMA_VERSION, SqliteStateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as s:
        yield s


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to an SQLite file (autocommit)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


# -- file handling ----------------------------------------------------------------------------


def test_creates_parent_directories_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with SqliteStateStore(path) as created:
        created.append_audit([record(1)])
    with SqliteStateStore(path) as reopened:
        assert len(reopened.audit_entries()) == 1
        assert reopened.verify_audit().ok
        assert reopened.schema_version() == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer lwr"):
        SqliteStateStore(path)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match=r"state\.db"):
        SqliteStateStore(path)


def test_another_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "tenant.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE members (email TEXT)")
    before = path.read_bytes()
    with pytest.raises(StateError, match="not an lwr state store"):
        SqliteStateStore(path)
    assert path.read_bytes() == before


def open_and_close(path: Path) -> None:
    SqliteStateStore(path).close()  # in the thread that opened it, as sqlite3 requires


def test_runners_opening_a_new_store_together_all_succeed(tmp_path: Path) -> None:
    """`apply DIR --parallel` opens one fresh state.db from several threads at once."""
    for attempt in range(20):
        path = tmp_path / f"state-{attempt}.db"
        at_once(4, partial(open_and_close, path))


# -- a lock judged by its holder's pid and lock file ------------------------------------------


def test_a_live_pid_without_the_lock_file_is_a_reused_pid(store: SqliteStateStore) -> None:
    # pid 1 is alive, but no process holds the tenant's lock file: not an apply any more.
    with raw(store.path) as conn:
        conn.execute(
            "INSERT INTO locks VALUES (?, 'ci', ?, 1, 'apply', 'then', 'token')",
            (KEY, socket.gethostname()),
        )
    with pytest.raises(LockHeld, match="pid was reused") as refused, store.lock(KEY, "apply"):
        pass
    assert "lwr unlock" in str(refused.value)


def test_holder_on_another_host_is_never_called_stale(store: SqliteStateStore) -> None:
    with raw(store.path) as conn:
        conn.execute(
            "INSERT INTO locks VALUES (?, 'ci', 'runner-7', 999999, 'apply', 'then', 'token')",
            (KEY,),
        )
    [holder] = store.list_locks()
    assert holder.alive is None and not holder.stale  # SQLite cannot see another host
    with pytest.raises(LockHeld) as refused, store.lock(KEY, "apply"):
        pass
    message = str(refused.value)
    assert "ci@runner-7 (pid 999999)" in message and "stale" not in message
    assert "lwr unlock" in message

"""Lock-free reads and the writers they cannot see: one bounded policy (sqlite_files.REREAD).

A read-only command opens the local tenant and the attested state `immutable` when no -wal
is beside them (it then writes and creates nothing, even in a read-only directory), so SQLite
cannot see a writer. The file's stamp is checked after each read: a writer that came and went
means the read is done again on a fresh connection, and one that keeps writing makes the
read give up, after REREAD.attempts reads, with a message that says so. Real files and real
writers throughout; a test subclass only decides when the writer writes.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from itertools import count
from pathlib import Path

import pytest

from reconciler.errors import StateError, TenantError
from reconciler.model import ChannelName, TenantState
from reconciler.providers.local import LocalTenant
from reconciler.sqlite_files import REREAD, sidecar
from reconciler.store.attested import SqliteAttestedStore

DOMAIN = "example.co.jp"


def _tenant(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.db"
    LocalTenant.open(path, create=True, domain=DOMAIN).close()
    assert not sidecar(path, "-wal").exists()  # so a reader opens it immutable
    return path


def _join(path: Path, email: str) -> None:
    with LocalTenant.open(path) as writer:
        writer.join(email)


def test_a_reader_opened_before_a_write_reads_what_was_written(tmp_path: Path) -> None:
    path = _tenant(tmp_path)
    with LocalTenant.open(path, readonly=True) as reader:
        _join(path, f"new@{DOMAIN}")
        assert f"new@{DOMAIN}" in reader.read().directory
        assert f"new@{DOMAIN}" in reader.directory()


def test_a_reader_a_writer_keeps_changing_gives_up_after_the_policy(tmp_path: Path) -> None:
    path = _tenant(tmp_path)
    written = count(1)
    reads: list[int] = []

    class Busy(LocalTenant):
        """A tenant whose every read races a writer that commits while it reads."""

        def _state(self, conn: sqlite3.Connection) -> TenantState:
            reads.append(1)
            _join(self.path, f"hire{next(written)}@{DOMAIN}")
            return super()._state(conn)

    gave_up = f"each of the {REREAD.attempts} times"
    with (
        Busy.open(path, readonly=True) as reader,
        pytest.raises(TenantError, match=gave_up) as raised,
    ):
        reader.read()
    assert len(reads) == REREAD.attempts
    assert "run the command again once it is not being written" in str(raised.value)
    assert str(path) in str(raised.value)


def _record(path: Path, email: str) -> None:
    with SqliteAttestedStore(path) as writer:
        writer.record("t", ChannelName.LINE, {"enabled": True}, "attested", "me", add=[email])


def test_the_attested_state_read_under_a_writer_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "attested.db"
    _record(path, f"a@{DOMAIN}")
    assert not sidecar(path, "-wal").exists()
    with SqliteAttestedStore(path, readonly=True) as reader:
        _record(path, f"b@{DOMAIN}")
        assert reader.load("t")[ChannelName.LINE].members == {f"a@{DOMAIN}", f"b@{DOMAIN}"}


def test_the_attested_state_under_a_writer_that_never_stops_gives_up(tmp_path: Path) -> None:
    """It used to read again for as long as the writer wrote: forever, for a long apply."""
    path = tmp_path / "attested.db"
    _record(path, f"a@{DOMAIN}")
    written = count(1)

    class Busy(SqliteAttestedStore):
        def _snapshot(self, doing: str) -> AbstractContextManager[None]:
            _record(self.path, f"hire{next(written)}@{DOMAIN}")
            return super()._snapshot(doing)

    gave_up = f"each of the {REREAD.attempts} times"
    with Busy(path, readonly=True) as reader, pytest.raises(StateError, match=gave_up):
        reader.load("t")
    assert next(written) == REREAD.attempts + 1

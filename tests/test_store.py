"""The SQLite state store: tenant lock (across processes too), journal, hash-chained audit log."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Change, change_id
from reconciler.errors import LockHeld, StateError
from reconciler.model import ChannelName
from reconciler.store.base import (
    AuditRecord,
    Outcome,
    canonical_json,
    chain_hash,
)
from reconciler.store.sqlite import SCHEMA_VERSION, SqliteStateStore

KEY = "local:/srv/tenant.db"
OTHER = "local:/srv/other.db"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    s = SqliteStateStore(tmp_path / "state.db")
    yield s
    s.close()


def record(n: int, *, tenant_key: str = KEY, result: str = "applied",
           target: str | None = None) -> AuditRecord:
    return AuditRecord(
        tenant_key=tenant_key, domain="example.co.jp", run_id="run-1", actor="ci@host",
        change_id=f"line/add_member/m{n}@example.co.jp", action="add_member", channel="line",
        target=target or f"m{n}@example.co.jp", before=False, after=True,
        result=result)  # type: ignore[arg-type]


def add(email: str) -> Change:
    return Change(change_id(Action.ADD_MEMBER, ChannelName.LINE, email), Action.ADD_MEMBER,
                  ChannelName.LINE, email, False, True)


@contextmanager
def raw(path: Path, *, tamper: bool = False) -> Iterator[sqlite3.Connection]:
    """A plain connection to the store file; `tamper` drops the append-only triggers first."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if tamper:
            conn.execute("DROP TRIGGER audit_no_update")
            conn.execute("DROP TRIGGER audit_no_delete")
        yield conn


def child(script: str, *args: str) -> subprocess.Popen[str]:
    """A second real process running `script`; talk to it over stdin/stdout."""
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


HOLD_LOCK = """
import sys
from reconciler.store.sqlite import SqliteStateStore
store = SqliteStateStore(sys.argv[1])
with store.lock(sys.argv[2], "apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""

DIE_HOLDING_LOCK = """
import os, signal, sys
from reconciler.store.sqlite import SqliteStateStore
store = SqliteStateStore(sys.argv[1])
with store.lock(sys.argv[2], "apply"):
    os.kill(os.getpid(), signal.SIGKILL)
"""


# -- lock -------------------------------------------------------------------------------------


def test_second_acquirer_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    first, second = SqliteStateStore(tmp_path / "s.db"), SqliteStateStore(tmp_path / "s.db")
    with first.lock(KEY, "apply") as holder:
        with pytest.raises(LockHeld) as refused, second.lock(KEY, "apply"):
            pytest.fail("two holders")
        message = str(refused.value)
        assert f"{holder.user}@{holder.host}" in message
        assert f"pid {holder.pid}" in message and "'apply'" in message
        assert holder.since in message and "stale" not in message
        assert refused.value.exit_code == 3
        with second.lock(OTHER, "apply"):  # another tenant of the same store is free
            assert {h.tenant_key for h in second.list_locks()} == {KEY, OTHER}
    with second.lock(KEY, "apply"):  # released on exit
        pass
    assert second.list_locks() == []
    first.close()
    second.close()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_lock_is_released_on_exception(store: SqliteStateStore, error: BaseException) -> None:
    with pytest.raises(type(error)), store.lock(KEY, "apply"):
        raise error
    assert store.list_locks() == []


def test_lock_excludes_another_process(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    with child(HOLD_LOCK, str(path), KEY) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match=rf"pid {proc.pid}\)") as refused, \
                store.lock(KEY, "apply"):
            pytest.fail("the lock was taken twice")
        assert "stale" not in str(refused.value)  # the holder is alive
        proc.communicate("\n", timeout=10)
        assert proc.returncode == 0
    with store.lock(KEY, "apply"):
        pass
    store.close()


def killed_holder(path: Path) -> int:
    """The pid of a real process that died (SIGKILL) holding KEY's lock in the store at `path`."""
    with child(DIE_HOLDING_LOCK, str(path), KEY) as proc:
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def test_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    pid = killed_holder(path)
    with SqliteStateStore(path) as store:
        [holder] = store.list_locks()
        assert holder.pid == pid and holder.stale
        with store.lock(KEY, "apply") as ours:  # its lock file is free: provably dead
            assert ours.replaced == holder and ours.pid == os.getpid()
            assert [h.pid for h in store.list_locks()] == [os.getpid()]
        assert store.list_locks() == []


def test_unlock_clears_a_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    pid = killed_holder(path)
    with SqliteStateStore(path) as store:
        [holder] = store.list_locks()
        assert store.unlock(KEY) == holder and holder.pid == pid
        assert store.unlock(KEY) is None


def test_a_live_pid_without_the_lock_file_is_a_reused_pid(store: SqliteStateStore) -> None:
    # pid 1 is alive, but no process holds the tenant's lock file: not an apply any more.
    with raw(store.path) as conn:
        conn.execute("INSERT INTO locks VALUES (?, 'ci', ?, 1, 'apply', 'then', 'token')",
                     (KEY, socket.gethostname()))
    with pytest.raises(LockHeld, match="pid was reused") as refused, store.lock(KEY, "apply"):
        pass
    assert "lwr unlock" in str(refused.value)


def test_holder_on_another_host_is_never_called_stale(store: SqliteStateStore) -> None:
    with raw(store.path) as conn:
        conn.execute("INSERT INTO locks VALUES (?, 'ci', 'runner-7', 999999, 'apply', 'then', "
                     "'token')", (KEY,))
    with pytest.raises(LockHeld) as refused, store.lock(KEY, "apply"):
        pass
    message = str(refused.value)
    assert "ci@runner-7 (pid 999999)" in message and "stale" not in message
    assert "lwr unlock" in message


def test_unlocked_holder_does_not_release_the_next_holders_lock(store: SqliteStateStore) -> None:
    first = store.lock(KEY, "apply")
    first.__enter__()
    store.unlock(KEY)  # an admin cleared it by force while the first apply still ran
    # The lock file still says the first one is alive: a second apply on this host waits.
    with pytest.raises(LockHeld, match="cleared with `lwr unlock`"), store.lock(KEY, "apply"):
        pytest.fail("two holders")
    # One from another host (which shares no lock file) takes the cleared row meanwhile.
    with raw(store.path) as conn:
        conn.execute("INSERT INTO locks VALUES (?, 'ci', 'runner-7', 999999, 'apply', 'then', "
                     "'token')", (KEY,))
    first.__exit__(None, None, None)  # the first one ending must not free the other's lock
    assert [h.host for h in store.list_locks()] == ["runner-7"]


# -- schema and file handling -----------------------------------------------------------------


def test_creates_parent_directories_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with SqliteStateStore(path) as created:
        created.append_audit([record(1)])
    with SqliteStateStore(path) as reopened:
        assert len(reopened.audit_entries()) == 1
        assert reopened.verify_audit().ok


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


# -- journal ----------------------------------------------------------------------------------


def test_journal_round_trip(store: SqliteStateStore) -> None:
    run = store.begin_run(KEY, "sha256:plan", "ci@host")
    assert store.last_run(KEY) == run and run.status == "running"
    changes = [add("alice@example.co.jp"), add("bob@example.co.jp")]
    store.mark_started(run.run_id, changes)
    assert [(e.change, e.state) for e in store.entries(run.run_id)] == [
        (changes[0], "started"), (changes[1], "started")]
    store.complete(run.run_id, [Outcome(changes[0].id, "done"),
                                Outcome(changes[1].id, "failed", "refused")], [record(1)])
    assert [(e.state, e.error) for e in store.entries(run.run_id)] == [
        ("done", None), ("failed", "refused")]
    store.finish_run(run.run_id, "failed")
    [finished] = store.runs(KEY, status="failed")
    assert finished.finished_at is not None and store.runs(OTHER) == []


def test_settling_an_unstarted_change_rolls_back_its_audit_rows(store: SqliteStateStore) -> None:
    run = store.begin_run(KEY, "d", "me")
    with pytest.raises(StateError, match="never journaled"):
        store.complete(run.run_id, [Outcome("line/add_member/x", "done")], [record(1)])
    assert store.audit_entries() == []
    assert store.verify_audit().ok


# -- audit log --------------------------------------------------------------------------------


def test_audit_chain_verifies_and_keeps_japanese(store: SqliteStateStore) -> None:
    greeting = AuditRecord(KEY, "example.co.jp", "run-1", "山田@host", "line/set_greeting",
                           "set_greeting", "line", None, {"message": "こんにちは"},
                           {"enabled": True, "message": "ご登録ありがとうございます。"},
                           "applied")
    store.append_audit([record(1), greeting])
    store.append_audit([record(3, tenant_key=OTHER, result="failed")])
    assert store.verify_audit() == store.verify_audit().__class__(True, 3)
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].after["message"] == "ご登録ありがとうございます。"
    assert entries[0].prev_hash == "0" * 64 and entries[1].prev_hash == entries[0].hash
    with raw(store.path) as conn:
        stored = conn.execute("SELECT after FROM audit WHERE seq = 2").fetchone()[0]
    assert "ご登録" in stored  # stored as text, not \\u escapes
    assert [e.seq for e in store.audit_entries(tenant_key=KEY)] == [1, 2]
    assert [e.seq for e in store.audit_entries(limit=2)] == [2, 3]


def test_audit_rows_cannot_be_changed_through_sqlite_without_dropping_triggers(
        store: SqliteStateStore) -> None:
    store.append_audit([record(1)])
    with raw(store.path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit")


@pytest.fixture
def five(store: SqliteStateStore) -> SqliteStateStore:
    store.append_audit([record(n) for n in range(1, 4)])
    store.append_audit([record(n) for n in range(4, 6)])
    assert store.verify_audit().ok
    return store


def test_edited_row_is_detected(five: SqliteStateStore) -> None:
    with raw(five.path, tamper=True) as conn:
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    result = five.verify_audit()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert "modified" in result.reason


def test_edited_json_is_detected_even_when_it_means_the_same(five: SqliteStateStore) -> None:
    with raw(five.path, tamper=True) as conn:
        conn.execute("UPDATE audit SET after = ' true' WHERE seq = 2")
    assert five.verify_audit().first_bad_seq == 2


def test_rehashed_row_breaks_the_next_link(five: SqliteStateStore) -> None:
    entry = five.audit_entries()[2]
    forged = record(3, target="mallory@example.co.jp")
    new_hash = chain_hash(entry.prev_hash, entry.seq, entry.at, forged)
    with raw(five.path, tamper=True) as conn:
        conn.execute("UPDATE audit SET target = ?, hash = ? WHERE seq = 3",
                     (forged.target, new_hash))
    result = five.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 4)


@pytest.mark.parametrize("seq", [1, 3, 5])
def test_deleted_row_is_detected(five: SqliteStateStore, seq: int) -> None:
    with raw(five.path, tamper=True) as conn:
        conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    result = five.verify_audit()
    assert not result.ok and result.first_bad_seq == seq


def test_reordered_rows_are_detected(five: SqliteStateStore) -> None:
    with raw(five.path, tamper=True) as conn:
        conn.execute("UPDATE audit SET seq = 100 WHERE seq = 2")
        conn.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE audit SET seq = 3 WHERE seq = 100")
    result = five.verify_audit()
    assert not result.ok and result.first_bad_seq == 2


def test_empty_log_verifies(store: SqliteStateStore) -> None:
    assert store.verify_audit() == store.verify_audit().__class__(True, 0)


texts = st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(action=texts, actor=texts, target=st.none() | texts, error=st.none() | texts,
       before=st.none() | st.booleans() | st.dictionaries(st.sampled_from(["enabled", "message"]),
                                                          st.booleans() | texts))
def test_row_hash_is_sha256_of_canonical_json(action: str, actor: str, target: str | None,
                                              error: str | None, before: object) -> None:
    """The hand-spelled hash payload is exactly canonical_json of the row's fields."""
    import hashlib

    rec = AuditRecord("k", "dömain", "r", actor, "c\"id", action, "line", target, before,
                      {"message": "改行\n"}, "failed", error)
    fields = {"seq": 7, "at": "2024-01-01T00:00:00.000Z", "tenant_key": "k", "domain": "dömain",
              "run_id": "r", "actor": actor, "change_id": "c\"id", "action": action,
              "channel": "line", "target": target, "before": before,
              "after": {"message": "改行\n"}, "result": "failed", "error": error}
    expected = hashlib.sha256(("p" + canonical_json(fields)).encode()).hexdigest()
    assert chain_hash("p", 7, "2024-01-01T00:00:00.000Z", rec) == expected


@pytest.mark.slow
def test_100k_audit_rows_append_and_verify(store: SqliteStateStore) -> None:
    rows = [record(n) for n in range(100_000)]
    store.append_audit(rows)
    assert len(store.audit_entries(limit=1)) == 1
    assert store.audit_entries(limit=1)[0].seq == 100_000
    assert store.verify_audit().checked == 100_000

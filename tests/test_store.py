"""The state store on every backend: tenant lock (across processes too), journal, audit chain.

Each test runs once per backend (`state_uri`: an SQLite file, then a PostgreSQL schema);
what only one backend does is in test_store_sqlite.py and test_store_postgres.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from crashkit import stress
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Change, change_id
from reconciler.errors import LockHeld, StateError
from reconciler.model import ChannelName
from reconciler.store import StateLocation, open_store
from reconciler.store.base import (
    AuditRecord,
    EntryOutcome,
    LockHolder,
    StateStore,
    VerifyResult,
    canonical_json,
    chain_hash,
)

KEY = "local:/srv/tenant.db"
OTHER = "local:/srv/other.db"
#: The tenant the stores are opened for; only the default location depends on it.
TENANT = "local:/srv/tenant.db"


@pytest.fixture
def store(state_uri: str) -> Iterator[StateStore]:
    with closing(open_store(state_uri, TENANT)) as s:
        yield s


def record(
    n: int, *, tenant_key: str = KEY, result: str = "applied", target: str | None = None
) -> AuditRecord:
    return AuditRecord(
        tenant_key=tenant_key,
        domain="example.co.jp",
        run_id="run-1",
        actor="ci@host",
        change_id=f"line/add_member/m{n}@example.co.jp",
        action="add_member",
        channel="line",
        target=target or f"m{n}@example.co.jp",
        before=False,
        after=True,
        result=result,
    )  # type: ignore[arg-type]


T = TypeVar("T")


def at_once(n: int, work: Callable[[], T]) -> list[T]:
    """Run `work` in n threads released together; their results, or the first error raised."""
    start = threading.Barrier(n)
    results: list[T] = []
    errors: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            results.append(work())
        except BaseException as e:  # collected: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def add(email: str) -> Change:
    return Change(
        change_id(Action.ADD_MEMBER, ChannelName.LINE, email),
        Action.ADD_MEMBER,
        ChannelName.LINE,
        email,
        False,
        True,
    )


# -- the database underneath ------------------------------------------------------------------


@dataclass
class Raw:
    """A plain DB-API connection (autocommit) to the store under test, beside lwr's own."""

    conn: Any
    backend: str  # "sqlite" or "postgresql"
    error: type[Exception]  # the driver's base error

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run `statement`, written with `?` placeholders whatever the driver; its cursor."""
        if self.backend == "postgresql":
            statement = statement.replace("?", "%s")
        return self.conn.execute(statement, params)


def split_schema(url: str) -> tuple[str, str]:
    """(URL libpq accepts, schema): `?schema=` is lwr's own parameter, unknown to libpq."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "lwr")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


@contextmanager
def raw(state_uri: str, *, tamper: bool = False) -> Iterator[Raw]:
    """A plain connection to the store; `tamper` disables the audit log's append-only triggers."""
    path = StateLocation.resolve(state_uri, TENANT).path
    if path is not None:
        with closing(sqlite3.connect(path, isolation_level=None)) as lite:
            if tamper:
                lite.execute("DROP TRIGGER audit_no_update")
                lite.execute("DROP TRIGGER audit_no_delete")
            yield Raw(lite, "sqlite", sqlite3.Error)
        return
    import psycopg

    conninfo, schema = split_schema(state_uri)
    with psycopg.connect(conninfo, autocommit=True) as pg:
        pg.execute(f'SET search_path TO "{schema}"')
        if tamper:
            pg.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        yield Raw(pg, "postgresql", psycopg.Error)


def plant_lock(state_uri: str, *, host: str, pid: int) -> None:
    """A lock row for KEY written behind lwr's back (on PostgreSQL: no session behind it)."""
    with raw(state_uri) as conn:
        if conn.backend == "sqlite":
            conn.execute(
                "INSERT INTO locks VALUES (?, 'ci', ?, ?, 'apply', 'then', 'token')",
                (KEY, host, pid),
            )
        else:
            from reconciler.store.postgres import lock_key

            conn.execute(
                "INSERT INTO locks VALUES (?, 'ci', ?, ?, 'apply', 'then', 'token', ?, 0)",
                (KEY, host, pid, lock_key(KEY)),
            )


# -- other processes --------------------------------------------------------------------------


def child(script: str, *args: str) -> subprocess.Popen[str]:
    """A second real process running `script`; talk to it over stdin/stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


HOLD_LOCK = f"""
import sys
from reconciler.store import open_store
store = open_store(sys.argv[1], {TENANT!r})
with store.lock(sys.argv[2], "apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""

DIE_HOLDING_LOCK = f"""
import os, signal, sys
from reconciler.store import open_store
store = open_store(sys.argv[1], {TENANT!r})
with store.lock(sys.argv[2], "apply"):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_holder(state_uri: str) -> int:
    """The pid of a real process that died (SIGKILL) holding KEY's lock in the store."""
    with child(DIE_HOLDING_LOCK, state_uri, KEY) as proc:
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def the_lock_once_stale(store: StateStore) -> LockHolder:
    """The only lock row, once the store sees its holder gone.

    A killed client's PostgreSQL session ends (dropping its advisory lock) a moment after the
    process, when the server reads the closed socket; SQLite knows at once.
    """
    deadline = time.monotonic() + 30
    while True:
        [holder] = store.list_locks()
        if holder.stale or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


# -- lock -------------------------------------------------------------------------------------


def test_second_acquirer_is_refused_with_the_holder_named(state_uri: str) -> None:
    with (
        closing(open_store(state_uri, TENANT)) as first,
        closing(open_store(state_uri, TENANT)) as second,
    ):
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
                assert not any(h.stale for h in second.list_locks())
        with second.lock(KEY, "apply"):  # released on exit
            pass
        assert second.list_locks() == []


def test_second_lock_through_the_same_store_is_refused(store: StateStore) -> None:
    # PostgreSQL grants an advisory lock to the session holding it again: the store must not.
    with store.lock(KEY, "apply"):
        with pytest.raises(LockHeld), store.lock(KEY, "apply"):
            pass
        assert [h.tenant_key for h in store.list_locks()] == [KEY]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_lock_is_released_on_exception(store: StateStore, error: BaseException) -> None:
    with pytest.raises(type(error)), store.lock(KEY, "apply"):
        raise error
    assert store.list_locks() == []
    with store.lock(KEY, "apply"):  # and can be taken again
        pass


def test_lock_excludes_another_process(state_uri: str, store: StateStore) -> None:
    with child(HOLD_LOCK, state_uri, KEY) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        with (
            pytest.raises(LockHeld, match=rf"pid {proc.pid}\)") as refused,
            store.lock(KEY, "apply"),
        ):
            pytest.fail("the lock was taken twice")
        assert "stale" not in str(refused.value)  # the holder is alive
        proc.communicate("\n", timeout=30)
        assert proc.returncode == 0
    assert store.list_locks() == []
    with store.lock(KEY, "apply"):
        pass


def test_lock_of_a_killed_process_is_stale_and_taken_over(
    state_uri: str, store: StateStore
) -> None:
    pid = killed_holder(state_uri)
    holder = the_lock_once_stale(store)
    assert holder.pid == pid and holder.stale
    with store.lock(KEY, "apply") as ours:  # provably dead: taken over, and said so
        assert ours.replaced == holder and ours.pid == os.getpid()
        assert [h.pid for h in store.list_locks()] == [os.getpid()]
    assert store.list_locks() == []


def test_unlock_clears_a_stale_lock(state_uri: str, store: StateStore) -> None:
    pid = killed_holder(state_uri)
    [holder] = store.list_locks()
    assert store.unlock(KEY) == holder and holder.pid == pid
    assert store.unlock(KEY) is None
    assert store.list_locks() == []


def test_unlocked_holder_does_not_release_the_next_holders_lock(
    state_uri: str, store: StateStore
) -> None:
    first = store.lock(KEY, "apply")
    first.__enter__()
    with closing(open_store(state_uri, TENANT)) as admin:
        admin.unlock(KEY)  # an admin cleared it by force while the first apply still ran
        # The first one still holds the tenant (lock file, or database session): a second
        # apply waits, told why no holder is named.
        with pytest.raises(LockHeld, match="cleared with `lwr unlock`"), admin.lock(KEY, "apply"):
            pytest.fail("two holders")
    # Someone else's row appears meanwhile (on SQLite: a runner on another host).
    plant_lock(state_uri, host="runner-7", pid=999999)
    first.__exit__(None, None, None)  # the first one ending must not free the other's lock
    assert [h.host for h in store.list_locks()] == ["runner-7"]


# -- journal ----------------------------------------------------------------------------------


def test_journal_round_trip(store: StateStore) -> None:
    run = store.begin_run(KEY, "sha256:plan", "ci@host")
    assert store.last_run(KEY) == run and run.status == "running"
    changes = [add("alice@example.co.jp"), add("bob@example.co.jp")]
    store.mark_started(run.run_id, changes)
    assert [(e.change, e.state) for e in store.entries(run.run_id)] == [
        (changes[0], "started"),
        (changes[1], "started"),
    ]
    store.complete(
        run.run_id,
        [EntryOutcome(changes[0].id, "done"), EntryOutcome(changes[1].id, "failed", "refused")],
        [record(1)],
    )
    assert [(e.state, e.error) for e in store.entries(run.run_id)] == [
        ("done", None),
        ("failed", "refused"),
    ]
    store.finish_run(run.run_id, "failed")
    [finished] = store.runs(KEY, status="failed")
    assert finished.finished_at is not None and store.runs(OTHER) == []
    assert store.applied_run(KEY, "sha256:plan") is None  # it failed: not a replay


def test_settling_an_unstarted_change_rolls_back_its_audit_rows(store: StateStore) -> None:
    run = store.begin_run(KEY, "d", "me")
    with pytest.raises(StateError, match="never journaled"):
        store.complete(run.run_id, [EntryOutcome("line/add_member/x", "done")], [record(1)])
    assert store.audit_entries() == []
    assert store.verify_audit().ok
    store.append_audit([record(2)])  # the store is still usable, the chain intact
    assert store.verify_audit() == VerifyResult(True, 1)


# -- audit log --------------------------------------------------------------------------------


def test_audit_chain_verifies_and_keeps_japanese(state_uri: str, store: StateStore) -> None:
    greeting = AuditRecord(
        KEY,
        "example.co.jp",
        "run-1",
        "山田@host",
        "line/set_greeting",
        "set_greeting",
        "line",
        None,
        {"message": "こんにちは"},
        {"enabled": True, "message": "ご登録ありがとうございます。"},
        "applied",
    )
    store.append_audit([record(1), greeting])
    store.append_audit([record(3, tenant_key=OTHER, result="failed")])
    assert store.verify_audit() == VerifyResult(True, 3)
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].after["message"] == "ご登録ありがとうございます。"
    assert entries[1].actor == "山田@host"
    assert entries[0].prev_hash == "0" * 64 and entries[1].prev_hash == entries[0].hash
    with raw(state_uri) as conn:
        stored = conn.execute("SELECT after FROM audit WHERE seq = 2").fetchone()[0]
    assert "ご登録" in stored  # stored as text, not \\u escapes
    assert [e.seq for e in store.audit_entries(tenant_key=KEY)] == [1, 2]
    assert [e.seq for e in store.audit_entries(limit=2)] == [2, 3]


def test_audit_rows_cannot_be_changed_through_the_database_without_disabling_triggers(
    state_uri: str, store: StateStore
) -> None:
    store.append_audit([record(1)])
    with raw(state_uri) as conn:
        with pytest.raises(conn.error, match="append-only"):
            conn.execute("UPDATE audit SET actor = 'mallory'")
        with pytest.raises(conn.error, match="append-only"):
            conn.execute("DELETE FROM audit")
    assert [e.actor for e in store.audit_entries()] == ["ci@host"]
    assert store.verify_audit() == VerifyResult(True, 1)


@pytest.fixture
def five(store: StateStore) -> StateStore:
    store.append_audit([record(n) for n in range(1, 4)])
    store.append_audit([record(n) for n in range(4, 6)])
    assert store.verify_audit().ok
    return store


def test_edited_row_is_detected(state_uri: str, five: StateStore) -> None:
    with raw(state_uri, tamper=True) as conn:
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    result = five.verify_audit()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert "modified" in result.reason


def test_edited_json_is_detected_even_when_it_means_the_same(
    state_uri: str, five: StateStore
) -> None:
    with raw(state_uri, tamper=True) as conn:
        conn.execute("UPDATE audit SET after = ' true' WHERE seq = 2")
    assert five.verify_audit().first_bad_seq == 2


def test_rehashed_row_breaks_the_next_link(state_uri: str, five: StateStore) -> None:
    entry = five.audit_entries()[2]
    forged = record(3, target="mallory@example.co.jp")
    new_hash = chain_hash(entry.prev_hash, entry.seq, entry.at, forged)
    with raw(state_uri, tamper=True) as conn:
        conn.execute(
            "UPDATE audit SET target = ?, hash = ? WHERE seq = 3", (forged.target, new_hash)
        )
    result = five.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 4)


@pytest.mark.parametrize("seq", [1, 3, 5])
def test_deleted_row_is_detected(state_uri: str, five: StateStore, seq: int) -> None:
    with raw(state_uri, tamper=True) as conn:
        conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    result = five.verify_audit()
    assert not result.ok and result.first_bad_seq == seq


def test_reordered_rows_are_detected(state_uri: str, five: StateStore) -> None:
    with raw(state_uri, tamper=True) as conn:
        conn.execute("UPDATE audit SET seq = 100 WHERE seq = 2")
        conn.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE audit SET seq = 3 WHERE seq = 100")
    result = five.verify_audit()
    assert not result.ok and result.first_bad_seq == 2


def test_empty_log_verifies(store: StateStore) -> None:
    assert store.verify_audit() == VerifyResult(True, 0)


# One transaction of many rows, one COPY (PostgreSQL) or executemany (SQLite), verified in
# one pass: 20,000 rows take each path as 100,000 do (nothing is chunked); `make stress`
# runs the 100,000 of a 100k-change apply.
BIG_AUDIT = 100_000 if stress() else 20_000


@pytest.mark.slow
def test_a_big_audit_log_appends_and_verifies(store: StateStore) -> None:
    rows = [record(n) for n in range(BIG_AUDIT)]
    store.append_audit(rows)
    [newest] = store.audit_entries(limit=1)
    assert newest.seq == BIG_AUDIT
    assert store.verify_audit() == VerifyResult(True, BIG_AUDIT)


# -- the hashing rule (no backend) ------------------------------------------------------------


texts = st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    action=texts,
    actor=texts,
    target=st.none() | texts,
    error=st.none() | texts,
    before=st.none()
    | st.booleans()
    | st.dictionaries(st.sampled_from(["enabled", "message"]), st.booleans() | texts),
)
def test_row_hash_is_sha256_of_canonical_json(
    action: str, actor: str, target: str | None, error: str | None, before: object
) -> None:
    """The hand-spelled hash payload is exactly canonical_json of the row's fields."""
    import hashlib

    rec = AuditRecord(
        "k",
        "dömain",
        "r",
        actor,
        'c"id',
        action,
        "line",
        target,
        before,
        {"message": "改行\n"},
        "failed",
        error,
    )
    fields = {
        "seq": 7,
        "at": "2024-01-01T00:00:00.000Z",
        "tenant_key": "k",
        "domain": "dömain",
        "run_id": "r",
        "actor": actor,
        "change_id": 'c"id',
        "action": action,
        "channel": "line",
        "target": target,
        "before": before,
        "after": {"message": "改行\n"},
        "result": "failed",
        "error": error,
    }
    expected = hashlib.sha256(("p" + canonical_json(fields)).encode()).hexdigest()
    assert chain_hash("p", 7, "2024-01-01T00:00:00.000Z", rec) == expected


# -- schema upgrades --------------------------------------------------------------------------


@pytest.fixture
def old_state(state_uri: str, tmp_path: Path) -> str:
    """An empty store as an lwr with state schema 1 left it (before `attested` results)."""
    if state_uri.startswith("local:"):
        from reconciler.store.sqlite_schema import APPLICATION_ID, SCHEMA, statements

        path = tmp_path / "v1" / "state.db"
        path.parent.mkdir()
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            for statement in statements(SCHEMA):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 1")
        return f"local:{path}"
    from reconciler.store.postgres import migrate

    url = f"{split_schema(state_uri)[0]}?schema=v1_{secrets.token_hex(5)}"
    assert migrate(url, up_to=1) == (0, 1)
    return url


#: The audit table's columns in state schemas 1 and 2 (3 added hash_alg).
V1_COLUMNS = (
    "seq, at, tenant_key, domain, run_id, actor, change_id, action, channel, target, "
    "before, after, result, error, prev_hash, hash"
)


def test_a_version_1_store_is_upgraded_in_place_keeping_its_chain(old_state: str) -> None:
    from reconciler.store.base import GENESIS_HASH

    at, old = "2026-01-01T00:00:00.000Z", record(1)
    digest = chain_hash(GENESIS_HASH, 1, at, old)
    row = (
        1,
        at,
        old.tenant_key,
        old.domain,
        old.run_id,
        old.actor,
        old.change_id,
        old.action,
        old.channel,
        old.target,
        "false",
        "true",
        old.result,
        None,
        GENESIS_HASH,
        digest,
    )
    insert = f"INSERT INTO audit ({V1_COLUMNS}) VALUES ({', '.join('?' * 16)})"
    with raw(old_state) as r:  # what the older lwr wrote
        r.execute(insert, row)
        r.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 1, ?) ON CONFLICT (id) "
            "DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (digest,),
        )
        with pytest.raises(r.error):  # version 1 knows no `attested` result
            r.execute(insert, (2, *row[1:12], "attested", *row[13:]))
    assert StateLocation.resolve(old_state, TENANT).migrate() == (1, 4)
    with closing(open_store(old_state, TENANT)) as store:
        assert store.schema_version() == 4
        store.append_audit([record(2, result="attested")])
        assert store.verify_audit() == VerifyResult(True, 2)
        assert [e.result for e in store.audit_entries()] == ["applied", "attested"]
    with raw(old_state) as r, pytest.raises(r.error):  # still append-only after the rebuild
        r.execute("DELETE FROM audit")


@pytest.fixture
def v3_state(state_uri: str, tmp_path: Path) -> str:
    """A store as an lwr with state schema 3 left it (before the last apply's selection)."""
    if state_uri.startswith("local:"):
        from reconciler.store.sqlite_schema import APPLICATION_ID, MIGRATIONS, statements

        path = tmp_path / "v3" / "state.db"
        path.parent.mkdir()
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            for number, script in MIGRATIONS:
                if number <= 3:
                    for statement in statements(script):
                        conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 3")
        return f"local:{path}"
    from reconciler.store.postgres import migrate

    url = f"{split_schema(state_uri)[0]}?schema=v3_{secrets.token_hex(5)}"
    assert migrate(url, up_to=3) == (0, 3)
    return url


def test_a_version_3_store_gains_the_selections_keeping_its_runs(v3_state: str) -> None:
    with raw(v3_state) as r:  # what the older lwr wrote
        r.execute(
            "INSERT INTO runs (run_id, tenant_key, plan_digest, actor, started_at, status) "
            "VALUES ('r1', ?, 'd', 'ci', 'then', 'done')",
            (KEY,),
        )
    if v3_state.startswith("local:"):  # read-only, an old store reads as having no selection
        with closing(StateLocation.resolve(v3_state, TENANT).open(readonly=True)) as store:
            assert store.last_selection(KEY) == {}
    assert StateLocation.resolve(v3_state, TENANT).migrate() == (3, 4)
    with closing(open_store(v3_state, TENANT)) as store:
        assert [r.run_id for r in store.runs(KEY)] == ["r1"]
        assert store.last_selection(KEY) == {}
        store.record_selection(KEY, {"line": b"first"}, "r1")
        store.record_selection(KEY, {"line": b"second", "lineworks": b"\x00\xff"}, None)
        assert store.last_selection(KEY) == {"line": b"second", "lineworks": b"\x00\xff"}
        assert store.last_selection("local:/srv/other.db") == {}

"""What only the PostgreSQL state store does: its migrated schema, its URL, and a lock judged by
the holder's database session, from any host.

The behaviour every backend shares is tested in test_store.py (`state_uri`, both backends).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from test_store import HOLD_LOCK, KEY, TENANT, at_once, child, record, split_schema

from reconciler.errors import LockHeld, StateError
from reconciler.store import StateLocation
from reconciler.store.base import LockHolder, VerifyResult
from reconciler.store.postgres import SCHEMA_VERSION, PostgresStateStore, lock_key, migrate


@pytest.fixture
def fresh_url(postgres_url: str) -> str:
    """A state URL whose schema does not exist yet (never migrated)."""
    return f"{postgres_url}?schema=t_{secrets.token_hex(6)}"


@pytest.fixture
def store(pg_state: str) -> Iterator[PostgresStateStore]:
    with PostgresStateStore(pg_state) as s:
        yield s


@contextmanager
def pg(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit session in the URL's schema: another runner, or an admin."""
    conninfo, schema = split_schema(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        yield conn


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


def plant_holder(conn: psycopg.Connection[Any], *, backend_pid: int) -> None:
    """A lock row for KEY from runner-7, whose session is `backend_pid`."""
    conn.execute(
        "INSERT INTO locks VALUES (%s, 'ci', 'runner-7', 999999, 'apply', 'then', 'token', %s, %s)",
        (KEY, lock_key(KEY), backend_pid),
    )


def the_lock_once(store: PostgresStateStore, *, alive: bool) -> LockHolder:
    """The only lock row, once the server agrees its session is (not) alive."""
    deadline = time.monotonic() + 30
    while True:
        [holder] = store.list_locks()
        if holder.alive is alive or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


# -- schema -----------------------------------------------------------------------------------


def test_migrate_creates_the_schema_once_and_keeps_the_data(fresh_url: str) -> None:
    assert migrate(fresh_url) == (0, SCHEMA_VERSION)
    with PostgresStateStore(fresh_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.append_audit([record(1)])
    assert migrate(fresh_url) == (SCHEMA_VERSION, SCHEMA_VERSION)
    with PostgresStateStore(fresh_url) as store:
        assert store.verify_audit() == VerifyResult(True, 1)


def test_runners_migrating_a_fresh_schema_together_all_succeed(postgres_url: str) -> None:
    for _ in range(5):
        url = f"{postgres_url}?schema=t_{secrets.token_hex(6)}"
        results = at_once(4, partial(migrate, url))
        assert sorted(results) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3
        with PostgresStateStore(url) as store:
            assert store.verify_audit() == VerifyResult(True, 0)


def test_an_unmigrated_schema_is_refused_naming_the_command(fresh_url: str) -> None:
    with pytest.raises(StateError, match=r"run `lwr state migrate --state postgresql://"):
        StateLocation.resolve(fresh_url, TENANT).open()
    _, schema = split_schema(fresh_url)
    with pg(fresh_url) as conn:  # opening created nothing
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone() == (0,)
    assert StateLocation.resolve(fresh_url, TENANT).migrate() == (0, SCHEMA_VERSION)
    with closing(StateLocation.resolve(fresh_url, TENANT).open()) as store:
        assert store.list_locks() == []


def test_newer_schema_is_refused(pg_state: str) -> None:
    with pg(pg_state) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, lwr_version) VALUES (%s, '99.0')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StateError, match="newer lwr") as opened:
        PostgresStateStore(pg_state)
    assert "upgrade lwr" in str(opened.value)
    with pytest.raises(StateError, match="newer lwr"):
        migrate(pg_state)


@pytest.mark.parametrize(
    "schema", ["Lwr", "1st", "a-b", "", "x" * 64, 'lwr"; DROP SCHEMA lwr CASCADE; --']
)
def test_bad_schema_name_is_refused(postgres_url: str, schema: str) -> None:
    url = f"{postgres_url}?{urlencode({'schema': schema})}"
    with pytest.raises(StateError, match="schema"):
        PostgresStateStore(url)
    with pytest.raises(StateError, match="schema"):
        migrate(url)


@pytest.mark.parametrize("use", [PostgresStateStore, migrate], ids=["open", "migrate"])
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://lwr:s3cret@127.0.0.1:1/lwr",  # nobody listens
        "postgresql://lwr:s3cret@127.0.0.1:1/lwr?schema=Bad",
    ],
)
def test_password_never_shows_in_errors(url: str, use: Callable[[str], object]) -> None:
    with pytest.raises(StateError) as failed:
        use(url)
    assert "s3cret" not in str(failed.value) and "lwr:***@127.0.0.1:1" in str(failed.value)
    assert "s3cret" not in str(StateLocation.resolve(url, TENANT))


def test_password_never_shows_in_the_migrate_hint(postgres_url: str) -> None:
    url = with_password(f"{postgres_url}?schema=t_{secrets.token_hex(6)}", "s3cret")
    with pytest.raises(StateError) as failed:  # not migrated, or the password is refused
        PostgresStateStore(url)
    assert "s3cret" not in str(failed.value) and "lwr:***@" in str(failed.value)


# -- lock: the holder's session decides, from any host ----------------------------------------


def test_holder_on_another_host_whose_session_is_gone_is_taken_over(
    pg_state: str, store: PostgresStateStore
) -> None:
    with pg(pg_state) as conn:
        plant_holder(conn, backend_pid=0)  # no session holds KEY's advisory lock
    [holder] = store.list_locks()
    assert holder.host == "runner-7" and holder.alive is False and holder.stale
    assert "database session has ended" in holder.gone_because
    with store.lock(KEY, "apply") as ours:  # unlike SQLite, provably dead from here too
        assert ours.replaced == holder
        assert [h.host for h in store.list_locks()] == [ours.host]


def test_holder_on_another_host_is_refused_while_its_session_lives(
    pg_state: str, store: PostgresStateStore
) -> None:
    with pg(pg_state) as runner:
        runner.execute("SELECT pg_advisory_lock(%s)", (lock_key(KEY),))
        backend_pid = runner.execute("SELECT pg_backend_pid()").fetchone()
        assert backend_pid is not None
        plant_holder(runner, backend_pid=backend_pid[0])
        [holder] = store.list_locks()
        assert holder.alive is True and not holder.stale
        with pytest.raises(LockHeld) as refused, store.lock(KEY, "apply"):
            pytest.fail("two holders")
        message = str(refused.value)
        assert "ci@runner-7 (pid 999999)" in message and "stale" not in message
    # runner-7's session ended (its host died, say): the server dropped its advisory lock.
    assert the_lock_once(store, alive=False).stale
    with store.lock(KEY, "apply") as ours:
        assert ours.replaced is not None and ours.replaced.host == "runner-7"


def test_live_holder_in_another_process_is_listed_alive(
    pg_state: str, store: PostgresStateStore
) -> None:
    with child(HOLD_LOCK, pg_state, KEY) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        [holder] = store.list_locks()
        assert (holder.pid, holder.alive, holder.stale) == (proc.pid, True, False)
        proc.communicate("\n", timeout=30)
        assert proc.returncode == 0
    assert store.list_locks() == []


# -- audit log --------------------------------------------------------------------------------


def test_audit_log_cannot_be_truncated(pg_state: str, store: PostgresStateStore) -> None:
    store.append_audit([record(1)])
    with pg(pg_state) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("TRUNCATE audit")
    assert store.verify_audit() == VerifyResult(True, 1)


def test_verify_while_another_runner_appends_never_reports_a_false_break(
    pg_state: str, store: PostgresStateStore
) -> None:
    store.append_audit([record(n) for n in range(1_000)])  # a log worth reading
    appended, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            with closing(PostgresStateStore(pg_state)) as writer:
                n = 0
                while not stop.is_set():
                    writer.append_audit([record(n), record(n + 1)])
                    n += 2
                    appended.set()
        except BaseException as e:  # collected: a thread's exception would be lost
            errors.append(e)
            appended.set()

    writer = threading.Thread(target=append)
    writer.start()
    try:
        appended.wait(timeout=30)
        results = [store.verify_audit() for _ in range(50)]
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert [r for r in results if not r.ok] == []
    assert store.verify_audit().ok

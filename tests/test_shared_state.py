"""Many runners, one PostgreSQL state: real `lwr` processes racing for a tenant, a runner
killed mid-apply and the next one resuming from the shared journal, and the commands that
look after the state (`lwr state migrate`, `lwr lock list`, `lwr unlock`).

The oracle reads the database with plain SQL, not with lwr's code. A runner is held where the
test wants it with the tenant gate (crashkit) or with a row lock on the audit chain's head,
which every journal settlement takes: holding it stops an apply after its tenant write and
before its journal says `done`.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from crashkit import (
    APPLY_ARGS,
    LWR,
    Attempt,
    Proc,
    Scenario,
    World,
    check_race_decided_by_the_lock,
    holds,
    stress,
    tenant_facts,
    wait_for,
)

SCENARIO = Scenario(10_000 if stress() else 1_000)
RACERS = 8


@contextmanager
def sql(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection to the state schema of `url` (autocommit)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "lwr")
    conninfo = urlunsplit(parts._replace(query=urlencode(query)))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        yield conn


def one(url: str, query: str, *params: Any) -> Any:
    with sql(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def lock_pid(url: str) -> int:
    return int(one(url, "SELECT pid FROM locks") or 0)


def started(url: str) -> int:
    return int(one(url, "SELECT count(*) FROM entries"))


def run_statuses(url: str) -> list[str]:
    with sql(url) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY seq")]


def session_gone(url: str, pid: int) -> bool:
    """The lock row of `pid` is there and its session no longer holds the advisory lock."""
    with sql(url) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' "
            "AND p.pid = l.backend_pid) FROM locks l WHERE l.pid = %s",
            (pid,),
        ).fetchone()
    return row is not None and not row[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.build(SCENARIO, tmp_path_factory.mktemp("shared"))


@pytest.fixture
def attempt(world: World, pg_state: str, request: pytest.FixtureRequest) -> Iterator[Attempt]:
    a = world.attempt(request.node.name.replace("[", "-").replace("]", ""))
    a.env["LWR_STATE"] = pg_state
    yield a
    a.release()


def check_converged(attempt: Attempt, url: str) -> None:
    """The tenant is the desired state, every change landed exactly once, the chain holds."""
    plan = attempt.world.plan
    facts = tenant_facts(attempt.tenant)
    assert all(holds(c, facts) for c in plan)
    with sql(url) as conn:
        audit = conn.execute(
            "SELECT change_id FROM audit WHERE result IN ('applied', 'recovered')"
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM entries WHERE state = 'started'").fetchone() == (
            0,
        )
    landed = Counter(cid for (cid,) in audit)
    assert set(landed) == {c["id"] for c in plan}
    assert not {cid: n for cid, n in landed.items() if n != 1}, "applied more than once"
    verify = attempt.lwr("audit", "--verify")
    assert verify.code == 0 and "hash chain intact" in verify.out, verify.err


# --------------------------------------------------------------------------- the race


@pytest.mark.slow
def test_eight_runners_exactly_one_applies_the_others_exit_3_naming_it(
    attempt: Attempt, pg_state: str
) -> None:
    # The tenant gate keeps the winner from finishing: every other runner, however slow to
    # start, meets the held lock (not a changed tenant).
    attempt.tenant_gate.close()
    racers = [attempt.apply() for _ in range(RACERS)]
    wait_for(lambda: lock_pid(pg_state) != 0, "one runner taking the lock")
    winner = next(p for p in racers if p.pid == lock_pid(pg_state))
    wait_for(lambda: started(pg_state) > 0, "the winner journaling", proc=winner)
    assert winner.freeze()  # at the tenant gate: its busy wait does not run down
    check_race_decided_by_the_lock(attempt, racers, winner, SCENARIO.size)
    assert run_statuses(pg_state) == ["done"]  # the losers never began a run
    check_converged(attempt, pg_state)


# --------------------------------------------------------------------------- a runner dies


@contextmanager
def audit_head_held(url: str) -> Iterator[None]:
    """Hold the audit chain's head: appliers stop after the tenant write, before `done`."""
    with sql(url) as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


def waiting_on_a_lock(url: str) -> int:
    """The backend pid of an lwr session waiting for a row lock (ours on the audit head)."""
    return int(
        one(
            url,
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'lwr' "
            "AND wait_event_type = 'Lock' LIMIT 1",
        )
        or 0
    )


def held_after_first_batch(attempt: Attempt, url: str) -> tuple[Proc, int]:
    """Start an apply and wait until its first batch is on the tenant and it waits for the
    audit head (call inside `audit_head_held`); the process and its database session."""
    proc = attempt.apply()
    wait_for(lambda: waiting_on_a_lock(url) != 0, "the first batch on the tenant", proc=proc)
    return proc, waiting_on_a_lock(url)


@pytest.mark.slow
def test_a_killed_runners_lock_goes_stale_and_the_next_runner_resumes_its_journal(
    attempt: Attempt, pg_state: str
) -> None:
    with audit_head_held(pg_state):
        first, _ = held_after_first_batch(attempt, pg_state)
        first.kill()  # batch 1 is on the tenant; the journal still says `started`
    wait_for(lambda: session_gone(pg_state, first.pid), "the server ending its session")

    listed = attempt.lwr("lock", "list")
    assert listed.code == 0 and f"(pid {first.pid})" in listed.out
    assert "database session has ended" in listed.out and "stale" in listed.out

    second = attempt.lwr("apply", str(attempt.world.desired), *APPLY_ARGS)
    assert second.code == 0, second.err
    assert f"Took over the lock of local:{attempt.tenant.resolve()}" in second.err
    assert "database session has ended" in second.err
    batch_one = len(attempt.world.batches()[0])
    assert f"{batch_one} recovered from an interrupted run" in second.out, second.out
    assert run_statuses(pg_state) == ["interrupted", "done"]
    check_converged(attempt, pg_state)
    assert one(pg_state, "SELECT count(*) FROM audit WHERE result = 'recovered'") == batch_one


def unlock(attempt: Attempt, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LWR, "unlock", *args],
        env=attempt.env,
        cwd=attempt.dir,
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_unlock_asks_first_and_a_live_runner_stays_protected(
    attempt: Attempt, pg_state: str
) -> None:
    apply = attempt.apply(gated=True)
    wait_for(lambda: started(pg_state) > 0, "the apply journaling", proc=apply)
    assert apply.freeze()
    kept = unlock(attempt, "n\n")
    assert kept.returncode != 0 and "STILL OPEN" in kept.stderr, kept.stderr
    assert lock_pid(pg_state) == apply.pid  # refused at the prompt: nothing cleared
    listed = attempt.lwr("lock", "list", "--format", "json")
    [held] = json.loads(listed.out)
    assert (held["pid"], held["stale"]) == (apply.pid, False)
    cleared = unlock(attempt, "y\n", held["tenant"])  # the fleet admin's way: by name
    assert cleared.returncode == 0 and "Lock cleared" in cleared.stdout, cleared.stderr
    # The record is gone but the runner's session still holds the tenant.
    second = attempt.lwr("apply", str(attempt.world.desired), *APPLY_ARGS)
    assert second.code == 3 and "cleared with `lwr unlock` while it ran" in second.err
    apply.thaw()
    attempt.release()
    assert apply.wait() == 0, apply.stderr_text()
    check_converged(attempt, pg_state)


# --------------------------------------------------------------------------- the schema


def test_state_migrate_creates_then_reports_up_to_date_and_others_wait_for_it(
    attempt: Attempt, postgres_url: str
) -> None:
    url = f"{postgres_url}?schema=fresh_{attempt.dir.name[-8:].lower().replace('-', '_')}"
    attempt.env["LWR_STATE"] = url
    before = attempt.lwr("apply", str(attempt.world.desired), *APPLY_ARGS)
    assert before.code == 1 and "lwr state migrate" in before.err, before.err
    assert tenant_facts(attempt.tenant) == tenant_facts(attempt.world.pristine)  # untouched
    first = attempt.lwr("state", "migrate")
    assert first.code == 0 and "migrated from version 0 to 4" in first.out, first.err
    again = attempt.lwr("state", "migrate")
    assert again.code == 0 and "up to date (version 4)" in again.out
    assert attempt.lwr("apply", str(attempt.world.desired), *APPLY_ARGS).code == 0


def test_a_password_in_the_state_url_is_never_printed(attempt: Attempt) -> None:
    attempt.env["LWR_STATE"] = "postgresql://lwr:s3cret-pw@127.0.0.1:1/lwr"
    for args in (("state", "migrate"), ("lock", "list"), ("audit",)):
        done = attempt.lwr(*args)
        assert done.code == 1, done.out
        assert "s3cret-pw" not in done.out + done.err
        assert "postgresql://lwr:***@127.0.0.1:1/lwr" in done.err


def test_the_audit_chain_is_one_across_runners_and_tenants(
    attempt: Attempt, pg_state: str, world: World
) -> None:
    """A second tenant applied through the same database continues the same chain."""
    other = world.attempt(attempt.dir.name + "-other")
    other.env["LWR_STATE"] = pg_state
    assert attempt.lwr("apply", str(world.desired), *APPLY_ARGS).code == 0
    assert other.lwr("apply", str(world.desired), *APPLY_ARGS).code == 0
    assert one(pg_state, "SELECT count(DISTINCT tenant_key) FROM audit") == 2
    assert one(pg_state, "SELECT max(seq) FROM audit") == 2 * SCENARIO.size
    verify = other.lwr("audit", "--verify")
    assert verify.code == 0 and f"{2 * SCENARIO.size} entries" in verify.out


@pytest.mark.slow
def test_a_lost_database_connection_stops_the_apply_cleanly_and_the_next_run_finishes(
    attempt: Attempt, pg_state: str
) -> None:
    with audit_head_held(pg_state):
        first, session = held_after_first_batch(attempt, pg_state)
        # The database goes away under the runner (a failover, a restart, a network cut).
        assert one(pg_state, "SELECT pg_terminate_backend(%s)", session) is True
        code = first.wait()
    err = first.stderr_text()
    assert code == 1 and "Traceback" not in err, err
    assert "Apply stopped because the state store failed" in err, err
    assert "terminating connection" in err and "run apply again" in err, err
    second = attempt.lwr("apply", str(attempt.world.desired), *APPLY_ARGS)
    assert second.code == 0, second.err
    assert "Took over the lock" in second.err
    check_converged(attempt, pg_state)

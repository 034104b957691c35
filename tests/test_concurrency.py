"""docs/contract.md#guarantees: real `lwr` processes racing for one tenant, readers beside a
running apply, and locks left behind by dead, live, foreign and reused-pid holders.

`make test` races 4 applies on a 1,000-change plan; `make stress` (LWR_STRESS=1) 8 applies
on 10,000 changes.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing

import pytest
from crashkit import (
    LWR,
    Attempt,
    Scenario,
    World,
    check_converged,
    check_race_decided_by_the_lock,
    entry_count,
    journal,
    lock_rows,
    stress,
    stress_only,
    tenant_facts,
    wait_for,
    write_locked,
)

SCENARIO = Scenario(10_000 if stress() else 1_000)
RACERS = 8 if stress() else 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.build(SCENARIO, tmp_path_factory.mktemp("concurrency"))


@pytest.fixture
def attempt(world: World, request: pytest.FixtureRequest) -> Iterator[Attempt]:
    a = world.attempt(request.node.name.replace("[", "-").replace("]", ""))
    yield a
    a.release()


def lock_row_pid(a: Attempt) -> int:
    rows = lock_rows(a.state)
    return rows[0][1] if rows else 0


def unlock(a: Attempt, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    """`lwr unlock` as an admin runs it; `answer` is typed at the prompt (None: no input)."""
    return subprocess.run(
        [LWR, "unlock", *args],
        env=a.env,
        cwd=a.dir,
        capture_output=True,
        text=True,
        input=answer,
        timeout=60,
        check=False,
    )


# --------------------------------------------------------------------------- the race


@pytest.mark.slow
def test_simultaneous_applies_exactly_one_applies_the_others_exit_3_naming_it(
    attempt: Attempt,
) -> None:
    # The tenant gate keeps the winner from finishing, so every other racer, however slow
    # to start, meets a held lock (not a changed tenant): the race is decided by the lock.
    attempt.tenant_gate.close()
    racers = [attempt.apply() for _ in range(RACERS)]
    wait_for(lambda: lock_row_pid(attempt) != 0, "one racer taking the lock")
    winner = next(p for p in racers if p.pid == lock_row_pid(attempt))
    # Frozen only once its journal is written: frozen inside a store transaction, it would
    # keep the others from even reading the lock (a stopped process, not a product fault).
    wait_for(
        lambda: entry_count(attempt.state) > 0, "the winner journaling its first batch", proc=winner
    )
    assert winner.freeze()  # frozen holding the lock: its busy wait does not run down
    check_race_decided_by_the_lock(attempt, racers, winner, SCENARIO.size)
    runs = journal(attempt.state).runs
    assert [status for _, status in runs] == ["done"]  # the losers never began a run
    check_converged(attempt)


@pytest.mark.slow
@stress_only
def test_applies_started_one_after_another_never_overlap(attempt: Attempt) -> None:
    """No gate: whoever comes late meets the lock or, once it is gone, a changed tenant."""
    racers = [attempt.apply() for _ in range(RACERS)]
    codes = sorted(p.wait() for p in racers)
    assert codes.count(0) >= 1 and set(codes) <= {0, 3}, [p.stderr_text() for p in racers]
    for p in racers:
        if p.returncode == 3:
            err = p.stderr_text()
            assert "is locked by" in err or "changed since the plan was made" in err, err
    check_converged(attempt)


# --------------------------------------------------------------------------- readers


@pytest.mark.slow
def test_readers_keep_working_while_an_apply_holds_the_write_locks(attempt: Attempt) -> None:
    apply = attempt.apply(gated=True)
    at = attempt.hold_before_tenant_write(apply, 2)
    # Frozen inside the tenant's write transaction, then inside the store's: the strongest
    # moments for a reader to be blocked. Each reader sees the last committed state.
    assert attempt.freeze_inside(apply, attempt.tenant, lambda: True, attempt.tenant_gate)
    assert write_locked(attempt.tenant)
    committed = attempt.applied()
    remaining = [c["id"] for c in attempt.world.plan if c["id"] not in committed]
    shown = attempt.lwr("plan", str(attempt.world.desired), "--format", "json")
    assert shown.code == 0, shown.err
    assert [c["id"] for c in json.loads(shown.out)["changes"]] == remaining
    state = attempt.lwr("show", "--format", "json")
    assert state.code == 0, state.err
    assert (
        frozenset(json.loads(state.out)["channels"]["line"]["members"])
        == tenant_facts(attempt.tenant).lists["line"]
    )
    assert attempt.lwr("show").code == 0
    assert attempt.lwr("export").code == 0
    assert attempt.lwr("audit").code == 0
    assert attempt.lwr("drift", str(attempt.world.desired)).code == 2
    attempt.state_gate.close()  # it holds the tenant's write lock, not the store's
    apply.thaw()  # it commits batch `at` to the tenant, then waits to settle the journal
    batch = attempt.world.batches()[at]
    wait_for(lambda: attempt.batch_on_tenant(at), "the batch committed", proc=apply)
    assert attempt.freeze_inside(
        apply,
        attempt.state,
        lambda: entry_count(attempt.state, "started") >= len(batch),
        attempt.state_gate,
    )
    assert write_locked(attempt.state)
    audit = attempt.lwr("audit", "--verify")
    assert audit.code == 0 and "hash chain intact" in audit.out, audit.err
    assert attempt.lwr("audit", "--format", "json").code == 0
    assert attempt.lwr("plan", str(attempt.world.desired)).code == 0
    apply.thaw()
    attempt.release()
    assert apply.wait() == 0, apply.stderr_text()
    check_converged(attempt)


@pytest.mark.slow
@stress_only
def test_readers_in_a_loop_beside_a_running_apply(attempt: Attempt) -> None:
    apply = attempt.apply()
    seen = 0
    while apply.poll() is None:
        for args in (("show",), ("plan", str(attempt.world.desired), "--format", "json")):
            done = attempt.lwr(*args)
            assert done.code == 0, done.err
            seen += 1
    assert apply.returncode == 0, apply.stderr_text()
    assert seen >= 2
    check_converged(attempt)


# --------------------------------------------------------------------------- stale locks


def killed_holding_the_lock(a: Attempt) -> int:
    """An apply SIGKILLed with batch 1 journaled and not yet on the tenant; its pid."""
    proc = a.apply(gated=True)
    a.hold_before_tenant_write(proc, 1)
    proc.kill()
    a.release()
    assert lock_row_pid(a) == proc.pid
    return proc.pid


@pytest.mark.slow
@stress_only
def test_a_dead_holders_lock_is_taken_over_and_said_so(attempt: Attempt) -> None:
    pid = killed_holding_the_lock(attempt)
    rerun = attempt.lwr(
        "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
    )
    assert rerun.code == 0, rerun.err
    assert f"Took over the lock of local:{attempt.tenant} left by" in rerun.err
    assert f"process {pid} is no longer running on this host" in rerun.err
    check_converged(attempt)


@pytest.mark.slow
def test_unlock_asks_first_and_names_a_stale_holder(attempt: Attempt) -> None:
    pid = killed_holding_the_lock(attempt)
    no_terminal = unlock(attempt)  # no answer at all: nothing is cleared
    assert no_terminal.returncode == 1 and lock_row_pid(attempt) == pid
    assert "Aborted." in no_terminal.stderr and "Traceback" not in no_terminal.stderr
    declined = unlock(attempt, answer="n\n")
    assert declined.returncode == 1 and lock_row_pid(attempt) == pid
    assert f"(pid {pid}) running 'apply'" in declined.stderr
    assert "no longer running on this host: the lock is stale" in declined.stderr
    assert "Unlock cancelled; the lock is kept." in declined.stderr
    agreed = unlock(attempt, answer="y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert "Lock cleared (was held by" in agreed.stdout
    assert f"(pid {pid})" in agreed.stdout and lock_rows(attempt.state) == []
    assert unlock(attempt, "--yes").stdout.strip() == "No lock was held."
    # The journal still has the killed run's batch in doubt: the next apply settles it.
    rerun = attempt.lwr(
        "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
    )
    assert rerun.code == 0 and "Took over" not in rerun.err, rerun.err
    check_converged(attempt)


@pytest.mark.slow
def test_unlock_of_a_live_apply_warns_and_cannot_let_a_second_one_in(attempt: Attempt) -> None:
    first = attempt.apply(gated=True)
    attempt.hold_before_tenant_write(first, 1)
    assert first.freeze()
    attempt.release()
    asked = unlock(attempt, answer="n\n")
    assert f"process {first.pid} is STILL RUNNING on this host" in asked.stderr
    forced = unlock(attempt, "--yes")
    assert forced.returncode == 0 and lock_rows(attempt.state) == []
    # The record is gone, but the live apply still holds the tenant's lock file.
    second = attempt.lwr(
        "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
    )
    assert second.code == 3, second.err
    assert "cleared with `lwr unlock` while it ran" in second.err
    first.thaw()
    assert first.wait() == 0, first.stderr_text()
    check_converged(attempt)


def insert_lock(a: Attempt, host: str, pid: int) -> str:
    key = f"local:{a.tenant}"
    with closing(sqlite3.connect(a.state, isolation_level=None)) as conn:
        conn.execute(
            "INSERT INTO locks VALUES (?, 'ops', ?, ?, 'apply', "
            "'2024-04-01T09:00:00.000Z', 'their-token')",
            (key, host, pid),
        )
    return key


@pytest.mark.slow
def test_a_lock_from_another_host_is_never_taken_over(attempt: Attempt) -> None:
    insert_lock(attempt, "runner-7", 4242)
    refused = attempt.lwr(
        "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
    )
    assert refused.code == 3, refused.err
    assert "locked by ops@runner-7 (pid 4242) running 'apply'" in refused.err
    assert "lwr unlock" in refused.err and attempt.applied() == set()
    asked = unlock(attempt, answer="y\n")
    assert "it was taken on runner-7: make sure that run is over" in asked.stderr
    assert asked.returncode == 0 and lock_rows(attempt.state) == []
    done = attempt.lwr("apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive")
    assert done.code == 0, done.err
    check_converged(attempt)


@pytest.mark.slow
@stress_only
def test_a_reused_pid_is_not_mistaken_for_the_holder(attempt: Attempt) -> None:
    # This test process is alive, but it holds no lock file: the pid was reused.
    insert_lock(attempt, socket.gethostname(), os.getpid())
    refused = attempt.lwr(
        "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
    )
    assert refused.code == 3 and "its pid was reused" in refused.err, refused.err
    assert unlock(attempt, "--yes").returncode == 0
    assert (
        attempt.lwr(
            "apply", str(attempt.world.desired), "--auto-approve", "--allow-destructive"
        ).code
        == 0
    )
    check_converged(attempt)


@pytest.mark.slow
def test_a_killed_run_after_its_last_tenant_write_is_settled_by_a_no_op_apply(
    attempt: Attempt,
) -> None:
    """Bug found by the crash tests: nothing left to plan used to leave the journal unsettled
    and the lock stale until the next apply that had changes."""
    proc = attempt.apply(gated=True)
    last = len(attempt.world.batches()) - 1
    assert attempt.hold_before_journal_done(proc, last) == last
    proc.kill()
    attempt.release()
    rerun = attempt.lwr("apply", str(attempt.world.desired), "--auto-approve")
    assert rerun.code == 0, rerun.err
    assert "No changes" in rerun.out
    assert "Took over the lock" in rerun.err
    assert "Recorded 1 change of the interrupted run" in rerun.out
    check_converged(attempt)

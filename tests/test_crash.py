"""docs/contract.md#guarantees under real kills: `lwr apply` on a local tenant, killed at chosen
points of its write sequence (SIGKILL), or asked to stop (SIGTERM, Ctrl-C).

After every kill: `lwr plan` shows exactly the remaining changes, `lwr audit --verify`
passes, and a re-run of `lwr apply` (which takes over the dead process's lock and says so)
leaves the tenant equal to the desired state with every change applied exactly once.

`make test` runs a 1,000-change plan and a handful of points; `make stress` (LWR_STRESS=1)
a 10,000-change plan and 24 SIGKILL points. tests/crashkit.py explains how a point is
reached from outside (database gates, SIGSTOP single-stepping); nothing in `reconciler`
has a test hook.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from crashkit import (
    Attempt,
    KillReport,
    Proc,
    Scenario,
    World,
    check_after_stop,
    entry_count,
    format_reports,
    journal,
    lock_rows,
    rng,
    run_count,
    stress,
    stress_only,
    wait_for,
)

SCENARIO = Scenario(10_000 if stress() else 1_000)
BATCHES = SCENARIO.batch_count


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = World.build(SCENARIO, tmp_path_factory.mktemp("crash"))
    assert len(built.batches()) == BATCHES
    return built


@pytest.fixture(scope="module")
def reports() -> Iterator[list[KillReport]]:
    """Kill points as they happened; `make stress` prints them (LWR_CRASH_REPORT=FILE)."""
    collected: list[KillReport] = []
    yield collected
    target = os.environ.get("LWR_CRASH_REPORT")
    if target and collected:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(
                f"\n{SCENARIO.size:,}-change plan, {BATCHES} batches, "
                f"seed {os.environ.get('LWR_STRESS_SEED', '6')}\n"
            )
            out.write(format_reports(collected) + "\n")


# --------------------------------------------------------------------------- kill points

Killer = Callable[[Attempt, random.Random], str]


def before_lock(a: Attempt, rand: random.Random) -> str:
    a.state_gate.close()  # the store is busy: the apply plans, then waits to take the lock
    proc = a.apply()
    wait_for(lambda: "Plan:" in proc.stdout_text(), "the plan printed", proc=proc)
    time.sleep(rand.uniform(0, 0.3))
    proc.kill()
    a.release()
    assert lock_rows(a.state) == [] and run_count(a.state) == 0
    return "planned, before the lock"


def locked_before_run(a: Attempt, rand: random.Random) -> str:
    proc = a.apply()
    wait_for(lambda: bool(lock_rows(a.state)), "the lock taken", proc=proc)
    a.state_gate.close()  # reading the tenant to re-check the plan: it cannot begin a run
    time.sleep(rand.uniform(0, 0.1))
    proc.kill()
    a.release()
    return f"lock held, {run_count(a.state)} run begun, {entry_count(a.state)} journaled"


def _held(k: int, hold: Callable[[Attempt, Proc, int], int], where: str) -> Killer:
    """Kill while the apply waits at a gate `hold` closed before batch k's next write."""

    def kill(a: Attempt, rand: random.Random) -> str:
        proc = a.apply(gated=True)
        at = hold(a, proc, k)
        time.sleep(rand.uniform(0, 0.05))
        proc.kill()
        a.release()
        return f"batch {at}: {where}"

    return kill


def journal_ahead(k: int) -> Killer:
    return _held(k, Attempt.hold_before_tenant_write, "journaled started, tenant not written")


def tenant_ahead(k: int) -> Killer:
    return _held(k, Attempt.hold_before_journal_done, "tenant committed, journal not done")


def inside_tenant_transaction(k: int) -> Killer:
    def kill(a: Attempt, rand: random.Random) -> str:
        proc = a.apply(gated=True)
        target = k
        for _ in range(5):  # a missed transaction: try the next batch
            at = a.hold_before_tenant_write(proc, target)
            if a.freeze_inside(proc, a.tenant, lambda: True, a.tenant_gate):
                proc.kill()
                a.release()
                return f"batch {at}: inside the tenant transaction"
            proc.thaw()
            target = at + 1
        raise AssertionError("never caught the apply inside a tenant transaction")

    return kill


def inside_journal_transaction(k: int) -> Killer:
    def kill(a: Attempt, rand: random.Random) -> str:
        proc = a.apply(gated=True)
        target = k
        for _ in range(5):
            at = a.hold_before_journal_done(proc, target)
            size = len(a.world.batches()[at])

            def settling(size: int = size) -> bool:
                return entry_count(a.state, "started") >= size

            if a.freeze_inside(proc, a.state, settling, a.state_gate):
                proc.kill()
                a.release()
                return f"batch {at}: inside the journal's settling transaction"
            proc.thaw()
            target = at + 1
        raise AssertionError("never caught the apply inside the journal transaction")

    return kill


def random_time(a: Attempt, rand: random.Random) -> str:
    proc = a.apply()
    # Up to about the apply's own length (~1 s per 10,000 changes here, after ~0.5 s of
    # planning), so most random kills land while it writes rather than after it finished.
    time.sleep(rand.uniform(0.2, 0.5 + SCENARIO.size / 10_000))
    finished = proc.poll() is not None
    proc.kill()
    return "finished first" if finished else classify(a)


def during_recovery(inside: bool) -> Killer:
    """Kill an apply with a batch in doubt, then kill the re-run while it recovers it."""

    def kill(a: Attempt, rand: random.Random) -> str:
        first = a.apply(gated=True)
        at = a.hold_before_journal_done(first, rand.randrange(2, BATCHES - 2))
        first.kill()
        a.release()
        second = a.apply()
        wait_for(
            lambda: [pid for _, pid in lock_rows(a.state)] == [second.pid],
            "the re-run taking over the lock",
            proc=second,
        )
        if not inside:
            a.state_gate.close()  # re-checking the tenant: it cannot settle the journal
            time.sleep(rand.uniform(0, 0.1))
            second.kill()
            a.release()
            return f"re-run killed before recovering batch {at}"
        a.state_gate.close()  # its next write to the store is the recovery's
        size = len(a.world.batches()[at])
        if not a.freeze_inside(
            second, a.state, lambda: entry_count(a.state, "started") >= size, a.state_gate
        ):
            pytest.fail("never caught the re-run inside its recovery transaction")
        second.kill()
        a.release()
        return f"re-run killed inside the recovery of batch {at}"

    return kill


def classify(a: Attempt) -> str:
    """Where a process killed at a random time died, read from what it left."""
    j = journal(a.state)
    if not j.runs:
        return "lock held, no run yet" if j.locks else "before the lock"
    started = [cid for cid, s in j.latest.items() if s == "started"]
    if started:
        on_tenant = set(started) <= a.applied()
        return f"{len(started)} journaled started, " + (
            "on the tenant" if on_tenant else "not on the tenant"
        )
    status = j.runs[-1][1]
    return f"run {status}, {len(j.latest)} settled" + (", lock left" if j.locks else "")


@dataclass(frozen=True)
class Point:
    name: str
    kill: Killer


def points() -> list[Point]:
    r = rng("points")
    later = list(range(1, BATCHES))

    def some(n: int) -> list[int]:
        return sorted(r.sample(later, n))

    if not stress():  # make test: five points, each kind of window once
        return [
            Point("journal-ahead-b3", journal_ahead(3)),
            Point("tenant-ahead-b4", tenant_ahead(4)),
            Point("in-tenant-txn-b3", inside_tenant_transaction(3)),
            Point("in-journal-txn-b2", inside_journal_transaction(2)),
            Point("in-recovery-txn", during_recovery(inside=True)),
        ]
    found = [
        Point("before-lock", before_lock),
        Point("locked-before-run", locked_before_run),
        Point("journal-ahead-b0", journal_ahead(0)),
        Point("tenant-ahead-b0", tenant_ahead(0)),
    ]
    found += [Point(f"journal-ahead-b{k}", journal_ahead(k)) for k in some(3)]
    found += [Point(f"tenant-ahead-b{k}", tenant_ahead(k)) for k in some(3)]
    found += [Point(f"in-tenant-txn-b{k}", inside_tenant_transaction(k)) for k in some(3)]
    found += [Point(f"in-journal-txn-b{k}", inside_journal_transaction(k)) for k in some(3)]
    found += [Point(f"random-{i}", random_time) for i in range(5)]
    found += [
        Point("before-recovery", during_recovery(inside=False)),
        Point("in-recovery-txn", during_recovery(inside=True)),
    ]
    return found


POINTS = points()


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_sigkill_then_plan_audit_and_rerun_finish_exactly_once(
    world: World, reports: list[KillReport], point: Point
) -> None:
    attempt = world.attempt(point.name)
    where = point.kill(attempt, rng(point.name))
    reports.append(check_after_stop(attempt, name=point.name, where=where))


def test_there_are_enough_distinct_kill_points() -> None:
    assert len({p.name for p in POINTS}) == len(POINTS) >= (20 if stress() else 5)


# --------------------------------------------------------------------------- signals


def stopped_cleanly(a: Attempt, proc: Proc, signum: int, at: int) -> str:
    """After SIGTERM/SIGINT at batch `at`: that batch finished, nothing after, lock released."""
    code = proc.wait()
    err = proc.stderr_text()
    name = signal.Signals(signum).name
    assert code == 128 + signum, err
    assert f"Apply stopped by {name} between batches" in err, err
    assert "journal is consistent and the lock is released" in err
    assert "Traceback" not in err
    j = journal(a.state)
    assert j.locks == [] and j.runs[-1][1] == "interrupted"
    assert "started" not in j.latest.values()
    done_batches = a.world.batches()[: at + 1]
    assert a.applied() == {cid for batch in done_batches for cid in batch}
    return f"{name} at batch {at}: stopped after it"


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=stress_only)],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_stops_at_the_next_batch_boundary(
    world: World, reports: list[KillReport], signum: int
) -> None:
    name = signal.Signals(signum).name
    rand = rng(name)
    attempt = world.attempt(f"stop-{name}")
    proc = attempt.apply(gated=True)
    at = attempt.hold_before_tenant_write(proc, rand.randrange(1, BATCHES - 1))
    proc.signal(signum)  # while it waits to write batch `at`: the batch still completes
    attempt.release()
    where = stopped_cleanly(attempt, proc, signum, at)
    reports.append(
        check_after_stop(
            attempt, name=f"{name}-between-batches", where=where, expect_lock_left=False
        )
    )


@pytest.mark.slow
@stress_only
def test_sigterm_before_the_first_batch_applies_nothing(
    world: World, reports: list[KillReport]
) -> None:
    attempt = world.attempt("stop-before-first")
    attempt.state_gate.close()
    proc = attempt.apply()
    wait_for(partial(proc.has_fd_to, attempt.state), "the store opened", proc=proc)
    time.sleep(0.5)  # by now it waits for the store's write lock, to take the tenant's lock
    proc.signal(signal.SIGTERM)
    attempt.release()
    assert proc.wait() == 143, proc.stderr_text()
    err = proc.stderr_text()
    # Either the executor saw it at its first batch boundary, or (on a very slow machine) the
    # signal came before the executor started: both stop cleanly with nothing applied.
    assert f"0 of {SCENARIO.size} changes applied" in err or err.strip() == "Stopped by SIGTERM.", (
        err
    )
    assert attempt.applied() == set()
    reports.append(
        check_after_stop(
            attempt,
            name="SIGTERM-before-first-batch",
            where="asked to stop while taking the lock",
            expect_lock_left=False,
        )
    )


@pytest.mark.slow
def test_ctrl_c_twice_stops_inside_a_batch_and_a_rerun_recovers(
    world: World, reports: list[KillReport]
) -> None:
    attempt = world.attempt("ctrl-c-twice")
    proc = attempt.apply(gated=True)
    at = attempt.hold_before_tenant_write(proc, 2)
    assert attempt.freeze_inside(proc, attempt.tenant, lambda: True, attempt.tenant_gate)
    proc.signal(signal.SIGINT, group=True)  # what a terminal sends on Ctrl-C
    proc.thaw()
    time.sleep(0.002)
    proc.signal(signal.SIGINT, group=True)  # the user insists
    code = proc.wait()
    err = proc.stderr_text()
    assert code == 130 and "Traceback" not in err, err
    assert "Apply stopped by SIGINT" in err or "Apply interrupted" in err, err
    assert lock_rows(attempt.state) == []  # released on the way out, even mid-batch
    reports.append(
        check_after_stop(
            attempt,
            name="ctrl-c-twice",
            where=f"batch {at}: inside the tenant transaction",
            expect_lock_left=False,
        )
    )


@pytest.mark.slow
@stress_only
def test_ctrl_c_at_a_random_moment(world: World, reports: list[KillReport]) -> None:
    rand = rng("ctrl-c")
    attempt = world.attempt("ctrl-c-random")
    proc = attempt.apply()
    time.sleep(rand.uniform(0.3, 0.6 + SCENARIO.size / 4000))
    proc.signal(signal.SIGINT, group=True)
    code = proc.wait()
    assert code in (0, 130), proc.stderr_text()
    assert lock_rows(attempt.state) == []
    where = "finished first" if code == 0 else classify(attempt)
    reports.append(
        check_after_stop(attempt, name="ctrl-c-random", where=where, expect_lock_left=False)
    )


def planning(proc: Proc) -> bool:
    return proc.poll() is not None or proc.has_fd_to(proc.out_path.parent / "tenant.db")


STOPPED_BY_SIGTERM = {"en": "Stopped by SIGTERM.", "ja": "SIGTERM により停止しました。"}


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_sigterm_outside_apply_exits_143_with_a_message(world: World, lang: str) -> None:
    attempt = world.attempt(f"sigterm-plan-{lang}")
    for _ in range(10):
        proc = Proc(["--lang", lang, "plan", str(world.desired)], env=attempt.env, cwd=attempt.dir)
        wait_for(partial(planning, proc), "lwr plan opening the tenant")
        if proc.freeze():  # still planning: past start-up, the handler is installed
            proc.signal(signal.SIGTERM)
            proc.thaw()
            assert proc.wait() == 143
            assert proc.stderr_text().strip().endswith(STOPPED_BY_SIGTERM[lang])
            assert "Traceback" not in proc.stderr_text()
            return
    pytest.fail("lwr plan always finished before it could be stopped")

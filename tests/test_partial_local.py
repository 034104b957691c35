"""A change the local tenant refuses mid-batch, through real `lwr apply` processes.

The refusal is the console's own rule: a member who is not in the directory cannot be given
(or lose) external authority. The test makes a member leave while the apply waits to write
the batch that names them, as an HR sync offboarding them at that moment would (the tenant
gate of tests/crashkit.py holds the write lock, deletes the member, commits). Then every
record is checked against the tenant with plain SQL: the changes that hold on the tenant,
the journal, the audit log and the counts `lwr` printed.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from crashkit import APPLY_ARGS, Attempt, Proc, Scenario, World, journal

SCENARIO = Scenario(600)  # member changes fill one batch of 500 and one of 84


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.build(SCENARIO, tmp_path_factory.mktemp("partial"))


def first_batch(world: World, action: str) -> int:
    return next(i for i, b in enumerate(world.batches()) if action in b[0])


def leave_while_waiting(a: Attempt, proc: Proc, batch: int) -> str:
    """Hold the apply before its tenant write of `batch`; the member named in the middle of
    that batch leaves the company (directory and lists) meanwhile. Returns the change id."""
    assert a.hold_before_tenant_write(proc, batch) == batch
    ids = a.world.batches()[batch]
    victim = ids[len(ids) // 2]
    email = a.world.change(victim)["target"]
    a.tenant_gate.commit_then_open(
        ("DELETE FROM connected WHERE email = ?", (email,)),
        ("DELETE FROM members WHERE email = ?", (email,)),
    )
    return victim


def audit_results(a: Attempt) -> Counter[tuple[str, str]]:
    done = a.lwr("audit", "--format", "json", "--limit", "100000")
    assert done.code == 0, done.err
    return Counter((row["change_id"], row["result"]) for row in json.loads(done.out))


def test_a_refused_add_mid_batch_applies_everything_else_and_records_exactly_that(
    world: World,
) -> None:
    a = world.attempt("refused-add")
    proc = a.apply(gated=True)
    victim = leave_while_waiting(a, proc, first_batch(world, "add_member"))
    assert proc.wait() == 1, proc.stderr_text()
    err = proc.stderr_text()

    plan_ids = [c["id"] for c in world.plan]
    applied = [c for c in plan_ids if c != victim]
    assert a.applied() == set(applied)  # the rest of its batch, and every later batch
    assert journal(a.state).latest == {c: "done" for c in applied} | {victim: "failed"}
    assert audit_results(a) == Counter({(c, "applied") for c in applied} | {(victim, "failed")})
    total = len(plan_ids)
    assert "1 change refused by the tenant, 0 skipped" in err and f"{total - 1} applied" in err
    assert f"refused  {victim}: " in err and "is not in the tenant directory" in err, err
    assert f"applied {total - 1:,}/{total:,} (99 %) · 1 refused" in err
    assert "Traceback" not in err


def test_a_refused_tighten_skips_every_later_add_and_loosen_and_nothing_else(
    world: World,
) -> None:
    a = world.attempt("refused-removal")
    proc = a.apply(gated=True)
    victim = leave_while_waiting(a, proc, first_batch(world, "remove_member"))
    assert proc.wait() == 1, proc.stderr_text()
    err = proc.stderr_text()

    by_id = {c["id"]: c for c in world.plan}
    later = {c for c, ch in by_id.items() if ch["phase"] in (4, 6)}  # add members, loosen
    applied = set(by_id) - later - {victim}
    # The leaver is off the list (they left), but not by lwr: journaled and audited failed.
    assert a.applied() == applied | {victim}
    assert journal(a.state).latest == {c: "done" for c in applied} | {victim: "failed"}
    assert audit_results(a) == Counter({(c, "applied") for c in applied} | {(victim, "failed")})
    assert f"1 change refused by the tenant, {len(later)} skipped" in err, err
    assert f"{len(applied)} applied" in err
    assert "would open a moment looser than both the old and the new state" in err
    assert any(f"skipped  {c}: the tighten {victim} was refused" in err for c in later)

    rerun = a.lwr("apply", str(world.desired), *APPLY_ARGS)  # what the report says to do
    assert rerun.code == 0, rerun.err
    assert a.applied() == set(by_id)


def test_fail_fast_stops_at_the_refusal_with_exact_records(world: World) -> None:
    a = world.attempt("fail-fast")
    a.tenant_gate.close()
    proc = Proc(
        ["apply", str(world.desired), *APPLY_ARGS, "--fail-fast"],
        env=a.env,
        cwd=a.dir,
        name="apply",
    )
    batch = first_batch(world, "add_member")
    victim = leave_while_waiting(a, proc, batch)
    assert proc.wait() == 1, proc.stderr_text()
    err = proc.stderr_text()

    plan_ids = [c["id"] for c in world.plan]
    before = plan_ids[: plan_ids.index(victim)]  # everything up to the refusal, no further
    assert a.applied() == set(before)
    latest = journal(a.state).latest
    assert {c for c, s in latest.items() if s == "done"} == set(before)
    assert latest[victim] == "failed"
    assert audit_results(a) == Counter({(c, "applied") for c in before} | {(victim, "failed")})
    assert f"{len(before)} of {len(plan_ids)} changes applied" in err and victim in err, err
    total = len(plan_ids)
    percent = len(before) * 100 // total
    assert f"applied {len(before):,}/{total:,} ({percent} %) · 1 refused" in err  # how far

"""The apply executor on the real local tenant: order, batches, journal, recovery, signals."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from builders import DOMAIN, channel_state, emails, tenant
from hypothesis import given
from hypothesis import strategies as st

from reconciler.actions import Action, Change, Execution, change_id
from reconciler.apply import (
    NOT_APPLIED,
    ApplyResult,
    batches,
    change_holds,
    default_actor,
    execute,
)
from reconciler.errors import LockHeld, TenantRuleError
from reconciler.model import ChannelName, TenantState
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalTenant, init_demo
from reconciler.stopped import ApplyStopped
from reconciler.store.sqlite import SqliteStateStore

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
Hook = Callable[[int, Sequence[Change]], None]


def change(
    action: Action,
    channel: ChannelName,
    target: str | None = None,
    *,
    before: object = None,
    after: object = None,
) -> Change:
    return Change(change_id(action, channel, target), action, channel, target, before, after)


def add(name: str, channel: ChannelName = LINE) -> Change:
    return change(Action.ADD_MEMBER, channel, f"{name}@{DOMAIN}", before=False, after=True)


GREETING = change(
    Action.SET_GREETING,
    LINE,
    before={"enabled": False, "message": ""},
    after={"enabled": True, "message": "ご登録ありがとうございます。"},
)

# A plan for the demo company (LINE on with alice, bob, carol; LINE WORKS off), in order.
PLAN = [
    change(Action.ENABLE_CHANNEL, LW, before=False, after=True),
    change(Action.SET_FILE_RESTRICTION, LINE, before=False, after=True),
    change(Action.REMOVE_MEMBER, LINE, f"bob@{DOMAIN}", before=True, after=False),
    add("dave"),
    add("erin"),
    add("frank"),
    add("alice", LW),
    add("bob", LW),
    GREETING,
    change(Action.SET_AUTO_GRANT, LW, before=False, after=True),
]
IDS = [c.id for c in PLAN]


class Recording(Provider):
    """The real local tenant, every apply call recorded; hooks inject faults around it.

    Only the faults are simulated: the tenant, its rules and its transactions are real.
    """

    def __init__(
        self,
        tenant: LocalTenant,
        batch_size: int = 2,
        *,
        before: Hook | None = None,
        after: Hook | None = None,
    ) -> None:
        self.tenant, self.key, self.batch_size = tenant, tenant.key, batch_size
        self.calls: list[list[str]] = []
        self.reads = 0
        self.before, self.after = before, after

    def read(self) -> TenantState:
        self.reads += 1
        return self.tenant.read()

    def directory(self) -> frozenset[str]:
        return self.tenant.directory()

    def domain(self) -> str:
        return self.tenant.domain()

    def execution(self, action: Action) -> Execution:
        return self.tenant.execution(action)

    def apply(self, changes: Sequence[Change]) -> None:
        call = len(self.calls)
        self.calls.append([c.id for c in changes])
        if self.before:
            self.before(call, changes)
        self.tenant.apply(changes)
        if self.after:
            self.after(call, changes)

    def close(self) -> None:
        self.tenant.close()


def on_call(n: int, action: Callable[[], None]) -> Hook:
    def hook(call: int, changes: Sequence[Change]) -> None:
        if call == n:
            action()

    return hook


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[LocalTenant]:
    t = init_demo(tmp_path / "tenant.db")
    yield t
    t.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    s = SqliteStateStore(tmp_path / "state.db")
    yield s
    s.close()


def run(
    provider: Recording, store: SqliteStateStore, changes: Sequence[Change] = PLAN, **kw: object
) -> ApplyResult:
    return execute(
        changes, provider, store, actor="ci@example", plan_digest="sha256:p", domain=DOMAIN, **kw
    )  # type: ignore[arg-type]


def final_results(store: SqliteStateStore) -> dict[str, list[str]]:
    """Audit results per change id, oldest first."""
    results: dict[str, list[str]] = {}
    for entry in store.audit_entries():
        results.setdefault(entry.change_id, []).append(entry.result)
    return results


def assert_each_applied_once(store: SqliteStateStore, ids: Sequence[str]) -> None:
    """Every change landed exactly once: one applied-or-recovered audit row each."""
    for cid, results in final_results(store).items():
        landed = [r for r in results if r in ("applied", "recovered")]
        assert len(landed) == (1 if cid in ids else 0), (cid, results)
    assert store.verify_audit().ok


# -- the normal path --------------------------------------------------------------------------


def test_applies_in_order_in_single_phase_batches_and_audits(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    provider = Recording(demo, batch_size=2)
    progress: list[tuple[int, int]] = []
    result = run(provider, store, on_progress=lambda e: progress.append((e.done, e.total)))

    assert result.applied == IDS and not (result.recovered or result.skipped or result.failed)
    assert [cid for call in provider.calls for cid in call] == IDS
    phases = {c.id: c.phase for c in PLAN}
    assert all(len(call) <= 2 and len({phases[c] for c in call}) == 1 for call in provider.calls)
    assert provider.reads == 0  # a clean history needs no extra tenant read
    state = demo.read()
    assert all(change_holds(c, state) for c in PLAN)

    assert progress[0] == (0, len(PLAN)) and progress[-1] == (len(PLAN), len(PLAN))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert {t for _, t in progress} == {len(PLAN)}

    entries = store.audit_entries(tenant_key=demo.key)
    assert [e.change_id for e in entries] == IDS
    assert {(e.result, e.run_id, e.actor, e.domain) for e in entries} == {
        ("applied", result.run_id, "ci@example", DOMAIN)
    }
    assert entries[IDS.index(GREETING.id)].after["message"] == "ご登録ありがとうございます。"
    assert store.verify_audit().ok
    [record] = store.runs(demo.key)
    assert (record.run_id, record.status, record.plan_digest) == (result.run_id, "done", "sha256:p")
    assert {e.state for e in store.entries(result.run_id)} == {"done"}
    assert store.list_locks() == []


@given(phases=st.lists(st.sampled_from(PLAN), max_size=30), size=st.integers(1, 5))
def test_batches_are_consecutive_bounded_and_single_phase(phases: list[Change], size: int) -> None:
    split = list(batches(phases, size))
    assert [c for batch in split for c in batch] == phases
    assert all(0 < len(b) <= size and len({c.phase for c in b}) == 1 for b in split)
    # Maximal: a batch ends only when full or when the phase changes.
    for left, right in itertools.pairwise(split):
        assert len(left) == size or left[-1].phase != right[0].phase


@given(
    phases=st.lists(st.sampled_from(PLAN), max_size=30, unique_by=lambda c: c.id),
    size=st.integers(1, 5),
)
def test_batches_by_lane_hold_up_to_size_of_each_lane_in_order(
    phases: list[Change], size: int
) -> None:
    changes = sorted(phases, key=lambda c: int(c.phase))

    def lane(change: Change) -> str:
        return change.channel.value

    split = list(batches(changes, size, lane))
    assert sorted(c.id for b in split for c in b) == sorted(c.id for c in changes)
    assert all(len({c.phase for c in b}) == 1 for b in split)
    # Phases in order; within each lane, plan order; at most `size` of a lane per batch.
    flat = [c for b in split for c in b]
    assert [int(c.phase) for c in flat] == sorted(int(c.phase) for c in flat)
    for name in {lane(c) for c in changes}:
        assert [c for c in flat if lane(c) == name] == [c for c in changes if lane(c) == name]
        assert all(sum(1 for c in b if lane(c) == name) <= size for b in split)


def test_a_held_lock_refuses_without_touching_the_tenant(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    provider = Recording(demo)
    with store.lock(demo.key, "apply"), pytest.raises(LockHeld, match="running 'apply'"):
        run(provider, store)
    assert provider.calls == [] and provider.reads == 0 and store.runs() == []


def test_duplicate_change_ids_are_refused_before_anything(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    with pytest.raises(ValueError, match="unique"):
        run(Recording(demo), store, [add("dave"), add("dave")])
    assert store.runs() == []


# -- failure and re-run -----------------------------------------------------------------------


def test_provider_refusal_is_recorded_stops_and_rerun_finishes_the_rest(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    nobody = add("nobody")  # not in the directory: the tenant refuses its whole batch
    first = [add("dave"), add("erin"), nobody, add("frank"), GREETING]
    provider = Recording(demo, batch_size=2)
    with pytest.raises(ApplyStopped, match="not in the tenant directory") as raised:
        run(provider, store, first)

    assert isinstance(raised.value.cause, TenantRuleError) and raised.value.signal is None
    result = raised.value.result
    assert result.applied == [first[0].id, first[1].id]
    assert result.failed == nobody.id and "nobody" in (result.error or "")
    assert len(provider.calls) == 2  # nothing after the failed batch ran
    assert store.runs()[0].status == "failed" and store.list_locks() == []
    assert [(e.change_id, e.state) for e in store.entries(result.run_id)][2:] == [
        (nobody.id, "failed"),
        (first[3].id, "failed"),
    ]
    failed = [e for e in store.audit_entries() if e.result == "failed"]
    assert [e.change_id for e in failed] == [nobody.id, first[3].id]
    assert all("nobody" in (e.error or "") for e in failed)
    assert f"frank@{DOMAIN}" not in demo.read().channels[LINE].members

    fixed = [c for c in first if c is not nobody]
    again = Recording(demo, batch_size=2)
    second = run(again, store, fixed)
    assert second.skipped == [first[0].id, first[1].id]
    assert second.applied == [first[3].id, GREETING.id] and second.recovered == []
    assert again.calls == [[first[3].id], [GREETING.id]] and again.reads == 1
    assert_each_applied_once(store, [c.id for c in fixed])


def test_interrupt_inside_a_batch_is_recovered_and_never_repeated(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    # KeyboardInterrupt after the tenant committed batch 2 but before the journal said done.
    provider = Recording(demo, batch_size=2, after=on_call(3, interrupt))
    with pytest.raises(ApplyStopped) as raised:
        run(provider, store)
    assert raised.value.interrupted and raised.value.signal is None
    [crashed] = store.runs()
    assert crashed.status == "interrupted" and store.list_locks() == []
    landed = [cid for call in provider.calls for cid in call]
    in_doubt = provider.calls[3]
    assert [e.change_id for e in store.entries(crashed.run_id) if e.state == "started"] == in_doubt

    again = Recording(demo, batch_size=2)
    result = run(again, store)
    assert result.recovered == in_doubt
    assert result.skipped == [cid for cid in landed if cid not in in_doubt]
    assert result.applied == IDS[len(landed) :]
    assert not set(landed) & {cid for call in again.calls for cid in call}
    assert again.reads == 1
    recovered = [e for e in store.audit_entries() if e.result == "recovered"]
    assert [(e.change_id, e.run_id) for e in recovered] == [(c, crashed.run_id) for c in in_doubt]
    assert {e.state for e in store.entries(crashed.run_id)} == {"done"}
    assert_each_applied_once(store, IDS)
    assert all(change_holds(c, demo.read()) for c in PLAN)


def test_second_ctrl_c_before_the_tenant_commits_reapplies_that_batch_later(
    demo: LocalTenant, store: SqliteStateStore
) -> None:
    def two_sigints() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the user insists: raises at once

    provider = Recording(demo, batch_size=2, before=on_call(2, two_sigints))
    with pytest.raises(ApplyStopped) as raised:
        run(provider, store)
    assert raised.value.interrupted and raised.value.signal is None  # not between batches
    in_doubt = provider.calls[2]
    assert store.runs()[0].status == "interrupted"

    result = run(Recording(demo, batch_size=2), store)
    assert result.recovered == [] and result.applied[: len(in_doubt)] == in_doubt
    not_applied = [e for e in store.audit_entries() if e.result == "failed"]
    assert [(e.change_id, e.error) for e in not_applied] == [(c, NOT_APPLIED) for c in in_doubt]
    assert_each_applied_once(store, IDS)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_between_batches_with_the_journal_settled(
    demo: LocalTenant, store: SqliteStateStore, signum: int
) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    provider = Recording(
        demo, batch_size=2, before=on_call(1, lambda: os.kill(os.getpid(), signum))
    )
    with pytest.raises(ApplyStopped, match=signal.Signals(signum).name) as raised:
        run(provider, store)
    assert raised.value.interrupted and raised.value.signal == signum
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    done = [cid for call in provider.calls for cid in call]
    assert len(provider.calls) == 2  # the batch in flight finished, no further one started
    result = raised.value.result
    assert result.applied == done
    [stopped] = store.runs()
    assert stopped.status == "interrupted" and store.list_locks() == []
    assert {e.state for e in store.entries(stopped.run_id)} == {"done"}

    rest = run(Recording(demo, batch_size=2), store)
    assert rest.skipped == done and rest.applied == IDS[len(done) :]
    assert_each_applied_once(store, IDS)


KILLED_APPLY = """
import json, os, signal, sys
from reconciler.actions import Change
from reconciler.apply import execute
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalTenant
from reconciler.store.sqlite import SqliteStateStore

tenant_path, state_path, plan_path, when = sys.argv[1:]
changes = [Change.from_json(c) for c in json.loads(open(plan_path).read())]
tenant = LocalTenant.open(tenant_path)

class DiesInBatch3(Provider):
    key, batch_size, calls = tenant.key, 2, 0
    read, directory, domain = tenant.read, tenant.directory, tenant.domain
    def apply(self, batch):
        self.calls += 1
        if self.calls == 3 and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        tenant.apply(batch)
        if self.calls == 3 and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

execute(changes, DiesInBatch3(), SqliteStateStore(state_path), actor="killed@ci",
        plan_digest="sha256:p", domain="example.co.jp")
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_mid_batch_then_rerun_finishes_without_repeating(
    tmp_path: Path, demo: LocalTenant, store: SqliteStateStore, when: str
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps([c.to_json() for c in PLAN]))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_APPLY, str(demo.path), str(store.path), str(plan_file), when],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    batch3 = [c.id for c in list(batches(PLAN, 2))[2]]
    landed_before = [c.id for b in list(batches(PLAN, 2))[:2] for c in b]

    [left] = store.list_locks()
    assert left.stale  # the killed process still "holds" the lock: it is taken over

    again = Recording(demo, batch_size=2)
    result = run(again, store)
    assert result.took_over == left
    [crashed, rerun] = store.runs()
    assert crashed.status == "interrupted" and rerun.status == "done"
    assert result.skipped == landed_before
    if when == "after":  # the tenant committed batch 3; the journal never heard of it
        assert result.recovered == batch3
        assert result.applied == IDS[len(landed_before) + len(batch3) :]
    else:  # journaled as started, never reached the tenant: applied by the re-run
        assert result.recovered == []
        assert result.applied == IDS[len(landed_before) :]
        assert [e.error for e in store.audit_entries() if e.result == "failed"] == [
            NOT_APPLIED
        ] * len(batch3)
    assert not set(landed_before) & {cid for call in again.calls for cid in call}
    assert_each_applied_once(store, IDS)
    assert all(change_holds(c, demo.read()) for c in PLAN)


@pytest.mark.slow
def test_ten_thousand_member_changes(tmp_path: Path, store: SqliteStateStore) -> None:
    big = init_demo(tmp_path / "big.db", members=12_000)
    state = big.read()
    todo = sorted(state.directory - state.channels[LINE].members)[:10_000]
    changes = [change(Action.ADD_MEMBER, LINE, e, before=False, after=True) for e in todo]
    provider = Recording(big, batch_size=big.batch_size)
    result = run(provider, store, changes)
    assert len(result.applied) == 10_000 and len(provider.calls) == 10_000 // big.batch_size
    assert len(store.audit_entries(limit=20_000)) == 10_000
    assert set(todo) <= big.read().channels[LINE].members
    big.close()


# -- change_holds and the actor ---------------------------------------------------------------


STATE = tenant(
    emails("alice", "bob", "carol"),
    line=channel_state(
        LINE,
        members=emails("alice"),
        restrict_file_transfer=True,
        greeting_enabled=True,
        greeting_message="ようこそ",
    ),
    lineworks=channel_state(
        LW,
        enabled=False,
        all_members=True,
        members=emails("alice", "bob", "carol"),
        auto_grant_new_members=True,
    ),
)


@pytest.mark.parametrize(
    ("c", "holds"),
    [
        (change(Action.ENABLE_CHANNEL, LINE, after=True), True),
        (change(Action.ENABLE_CHANNEL, LW, after=True), False),
        (change(Action.DISABLE_CHANNEL, LW, after=False), True),
        (change(Action.DISABLE_CHANNEL, LW), True),  # null after: the action's own direction
        (add("alice"), True),
        (add("bob"), False),
        (change(Action.ADD_MEMBER, LINE, f"ALICE@{DOMAIN}", after=True), True),
        (change(Action.REMOVE_MEMBER, LINE, f"bob@{DOMAIN}", after=False), True),
        (change(Action.REMOVE_MEMBER, LINE, f"alice@{DOMAIN}", after=False), False),
        (change(Action.GRANT_ALL_MEMBERS, LW, after=True), True),
        (change(Action.GRANT_ALL_MEMBERS, LINE, after=True), False),
        (change(Action.RESTRICT_TO_LISTED_MEMBERS, LINE, after=False), True),
        (change(Action.SET_GREETING, LINE, after={"enabled": True}), True),
        (change(Action.SET_GREETING, LINE, after={"enabled": True, "message": "ようこそ"}), True),
        (change(Action.SET_GREETING, LINE, after={"message": "別の文"}), False),
        (change(Action.SET_GREETING, LINE, after={}), False),
        (change(Action.SET_GREETING, LINE, after={"colour": "red"}), False),
        (change(Action.SET_AUTO_GRANT, LW, after=True), True),
        (change(Action.SET_AUTO_GRANT, LINE, after=True), False),
        (change(Action.SET_FILE_RESTRICTION, LINE, after=True), True),
        (change(Action.SET_FILE_RESTRICTION, LW, after=True), False),
        (change(Action.SET_FILE_RESTRICTION, LINE, after=1), False),  # not a bool: never holds
    ],
)
def test_change_holds(c: Change, holds: bool) -> None:
    assert change_holds(c, STATE) is holds


def test_default_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWR_ACTOR", "deploy-bot for hanako@example.co.jp")
    assert default_actor() == "deploy-bot for hanako@example.co.jp"
    monkeypatch.delenv("LWR_ACTOR")
    user, _, host = default_actor().partition("@")
    assert user and host

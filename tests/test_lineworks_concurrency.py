"""The APIs of one phase run side by side; phases, journal and outcomes stay exact.

Through the real CLI (in-process `run`) on the LINE WORKS emulator at 127.0.0.1: each API
(link-to-line, link-to-works, unlink-to-…) has its own budget, so an apply sends to the APIs of
a phase at once, one worker per API, and starts a phase only when the one before is done. When
one API fails for good, the other stops between requests, and the journal, the attested
state and the tenant agree on exactly what took effect.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator import Fault, Limits
from emulator.harness import Harness, emulated

from reconciler import workflow
from reconciler.cli import run
from reconciler.desired import load_desired
from reconciler.model import ChannelName
from reconciler.outcomes import ApplyProgress
from reconciler.providers import open_provider
from reconciler.stopped import ApplyStopped
from reconciler.store import StateLocation
from reconciler.store.sqlite import SqliteStateStore

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
D = "example.co.jp"
N = 16  # per API: at 20 requests per second, most of a second per API and phase
LEAVING = {LINE: [f"a{i:02d}@{D}" for i in range(N)], LW: [f"b{i:02d}@{D}" for i in range(N)]}
JOINING = {LINE: [f"c{i:02d}@{D}" for i in range(N)], LW: [f"d{i:02d}@{D}" for i in range(N)]}


def _file(path: Path, members: dict[ChannelName, list[str]]) -> Path:
    text = f"version: 1\ntenant: {D}\nexternal_messaging:\n"
    for channel in (LINE, LW):
        text += f"  {channel.value}:\n    enabled: true\n"
        text += f"    members: {{policy: exact, include: [{', '.join(members[channel])}]}}\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Both channels on, LEAVING linked and attested; 20 requests per second per API."""
    with emulated(tmp_path, limits=Limits(rate=20, window=1.0)) as harness:
        for group in (*LEAVING.values(), *JOINING.values()):
            for email in group:
                harness.tenant.add_user(email)
        for channel in (LINE, LW):
            harness.tenant.channels[channel].enabled = True
            harness.tenant.channels[channel].linked = set(LEAVING[channel])
        harness.aim(monkeypatch, tmp_path, max_retry_time=0.3)
        assert run(["attest", str(_file(tmp_path / "now.yaml", LEAVING)), "--yes"]) == 0
        yield harness


def _posts(h: Harness) -> list[tuple[float, str]]:
    return [(e.at, e.operation) for e in h.emulator.log if e.method == "POST"]


def _linked(h: Harness) -> dict[ChannelName, frozenset[str]]:
    snap = h.tenant.snapshot()
    return {c: frozenset(snap.channels[c].members) for c in (LINE, LW)}


def _journal() -> dict[str, str]:
    store = StateLocation.resolve(None, os.environ["LWR_TENANT"]).open(readonly=True)
    try:
        [*_, last] = store.runs()
        return {e.change_id: e.state for e in store.entries(last.run_id)}
    finally:
        store.close()


def _attested() -> dict[ChannelName, frozenset[str]]:
    provider = open_provider(os.environ["LWR_TENANT"], None)
    try:
        state = provider.read()
    finally:
        provider.close()
    return {c: state.channels[c].members for c in (LINE, LW)}


def test_the_apis_of_a_phase_run_side_by_side_one_phase_after_the_other(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = _file(tmp_path / "d.yaml", JOINING)
    assert run(["apply", str(desired), "--auto-approve", "--allow-destructive"]) == 0
    assert "Apply complete: 64 changes applied" in capsys.readouterr().out
    assert _linked(h) == {c: frozenset(JOINING[c]) for c in (LINE, LW)}
    posts = _posts(h)
    removals = [(at, op) for at, op in posts if "/unlink-to-" in op]
    additions = [(at, op) for at, op in posts if "/link-to-" in op]
    assert len(removals) == len(additions) == 2 * N
    # A phase finishes before the next starts: every removal before the first addition.
    assert max(at for at, _ in removals) < min(at for at, _ in additions)
    for phase in (removals, additions):
        line = [at for at, op in phase if op.endswith("-to-line")]
        works = [at for at, op in phase if op.endswith("-to-works")]
        # Side by side: each API's first request comes before the other API's last.
        assert min(works) < max(line) and min(line) < max(works), phase
    assert set(_journal().values()) == {"done"}


def test_one_api_failing_stops_the_other_between_requests_and_every_record_agrees(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = _file(
        tmp_path / "d.yaml", {LINE: LEAVING[LINE] + JOINING[LINE], LW: LEAVING[LW] + JOINING[LW]}
    )
    # link-to-works makes 4 links, then fails for good (HTTP 500 past the retry budget).
    h.emulator.faults.append(Fault("500", match="link-to-works", skip=4, times=1000))
    assert run(["apply", str(desired), "--auto-approve"]) == 1
    assert "gave up on POST /users/{userId}/link-to-works" in capsys.readouterr().err
    made = _linked(h)
    assert made[LW] - frozenset(LEAVING[LW]) == frozenset(JOINING[LW][:4])
    added = made[LINE] - frozenset(LEAVING[LINE])
    assert 0 < len(added) < N  # link-to-line went on beside it, then stopped part-way
    # Exactly what took effect is journaled done and attested; nothing else is.
    done = {c for c, state in _journal().items() if state == "done"}
    assert done == {f"line/add_member/{e}" for e in added} | {
        f"lineworks/add_member/{e}" for e in JOINING[LW][:4]
    }
    assert _attested() == made

    h.emulator.faults.clear()  # the API is back: the next apply finishes the rest
    assert run(["apply", str(desired), "--auto-approve"]) == 0
    assert _linked(h) == {c: frozenset(LEAVING[c] + JOINING[c]) for c in (LINE, LW)}


def test_apply_eta_is_the_plan_estimate(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """16 unlink-to-works, then 16 link-to-line at 20 a second: ≈ 2 s by the plan's model,
    and the apply's first progress line says so before a request is sent."""
    desired = _file(tmp_path / "d.yaml", {LINE: LEAVING[LINE] + JOINING[LINE], LW: []})
    assert run(["apply", str(desired), "--auto-approve", "--allow-destructive"]) == 0
    out, err = capsys.readouterr()
    assert "≈ 2 s at 20 req/1 s per API" in out + err
    lines = [line for line in err.splitlines() if line.startswith("applied ")]
    assert lines[0] == "applied 0/32 (0 %) · phase 3 remove members · ETA 2 s", lines
    assert any("phase 3" in line and "ETA <1 s" in line for line in lines[1:]), lines


def test_ctrl_c_stops_at_the_batch_boundary_with_both_workers_settled(tmp_path: Path) -> None:
    """60 links per API: a batch holds 50 of each. Ctrl-C during the first one: both APIs'
    50 are made and journaled done, nothing of the second batch is sent; a re-run finishes."""
    joining = {c: [f"{p}{i:02d}@{D}" for i in range(60)] for c, p in ((LINE, "p"), (LW, "q"))}
    with emulated(tmp_path, limits=Limits(rate=40, window=1.0)) as h:  # a batch: ~1.25 s
        for group in joining.values():
            for email in group:
                h.tenant.add_user(email)
        for channel in (LINE, LW):
            h.tenant.channels[channel].enabled = True
        provider = h.provider()
        try:
            provider.read()
            provider.attest(load_desired(_file(tmp_path / "now.yaml", {LINE: [], LW: []})), "a")
            plan = workflow.plan_file(_file(tmp_path / "d.yaml", joining), provider)

            def ctrl_c(event: ApplyProgress) -> None:
                if event.done == 0:  # Ctrl-C while the first batch runs
                    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

            with SqliteStateStore(tmp_path / "s.db") as store:
                with pytest.raises(ApplyStopped) as raised:
                    workflow.apply_plan(
                        plan,
                        provider,
                        store,
                        actor="ci",
                        allow_destructive=True,
                        on_progress=ctrl_c,
                        waited=False,
                    )
                stop = raised.value
                assert stop.interrupted and stop.signal == signal.SIGINT
                first = {c: set(joining[c][:50]) for c in (LINE, LW)}
                assert {c: set(m) for c, m in _linked(h).items()} == first
                assert len(stop.result.applied) == 100
                [run_record] = store.runs()
                states = {e.change_id: e.state for e in store.entries(run_record.run_id)}
                assert (
                    list(states.values()).count("done") == 100 and "started" not in states.values()
                )
                assert provider.read().channels[LINE].members == frozenset(first[LINE])

                again = workflow.plan_file(tmp_path / "d.yaml", provider)
                rest = workflow.apply_plan(
                    again, provider, store, actor="ci", allow_destructive=True, waited=False
                )
                assert len(rest.applied) == 20
        finally:
            provider.close()
        assert _linked(h) == {c: frozenset(joining[c]) for c in (LINE, LW)}

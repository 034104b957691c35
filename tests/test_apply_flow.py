"""The one apply flow (reconciler.workflow.apply) as a script or another front end meets it:
its steps in order through the UI, refusals before any question, one typed stop."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from reconciler import workflow
from reconciler.apply import ProgressCallback
from reconciler.cli import run
from reconciler.errors import AlreadyApplied, DestructiveRefused, ExitCode
from reconciler.manual import ManualStep
from reconciler.outcomes import ApplyProgress
from reconciler.plan import Plan
from reconciler.policy import PolicyReport
from reconciler.stopped import ApplyStopped
from reconciler.store.base import LockHolder

HEAD = "version: 1\ntenant: example.co.jp\n"
ADD_DAVE = HEAD + (
    "external_messaging:\n  line:\n    members:\n      policy: additive\n"
    "      include: [dave@example.co.jp]\n"
)
LINE_OFF = HEAD + "external_messaging:\n  line:\n    enabled: false\n"


class Recording:
    """A UI that answers yes and writes down what the flow told and asked it."""

    can_ask = False

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self.events: list[str] = []
        self.stops: list[ApplyStopped] = []
        self._on_progress = on_progress

    def show_plan(self, plan: Plan, policy: PolicyReport) -> None:
        self.events.append(f"show_plan {len(plan.changes)}")

    def show_checklist(self, plan: Plan) -> None:
        self.events.append("show_checklist")

    def confirm(self, plan: Plan) -> None:
        self.events.append("confirm")

    def progress(self, *, prompting: bool) -> AbstractContextManager[ProgressCallback | None]:
        self.events.append("progress")
        return self._progress()

    @contextmanager
    def _progress(self) -> Iterator[ProgressCallback | None]:
        yield self._on_progress

    def manual_step(self, step: ManualStep) -> bool:
        self.events.append("manual_step")
        return True

    def took_over(self, holder: LockHolder) -> None:
        self.events.append("took_over")

    def waiting_for_lock(self, holder: LockHolder, timeout: float) -> None:
        self.events.append("waiting_for_lock")

    def stopped(self, stop: ApplyStopped, total: int) -> None:
        self.events.append(f"stopped {len(stop.result.applied)}/{total}")
        self.stops.append(stop)


def request(demo: Path, source: str | Path, *, confirmed: bool = False) -> workflow.ApplyRequest:
    return workflow.ApplyRequest(
        f"local:{demo}/tenant.db", source, "ci@example", confirmed=confirmed
    )


def desired(demo: Path, text: str) -> Path:
    path = demo / "desired.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_step_runs_once_in_order_and_a_second_apply_only_shows_the_plan(demo: Path) -> None:
    ui = Recording()
    done = workflow.apply(request(demo, desired(demo, ADD_DAVE)), ui)
    assert ui.events == ["show_plan 1", "show_checklist", "confirm", "progress"]
    assert done.result is not None
    assert done.result.applied == [c.id for c in done.planned.plan.changes]

    again = Recording()
    nothing = workflow.apply(request(demo, desired(demo, ADD_DAVE)), again)
    assert again.events == ["show_plan 0"] and nothing.result is None


def test_confirmed_requests_are_not_asked(demo: Path) -> None:
    ui = Recording()
    workflow.apply(request(demo, desired(demo, ADD_DAVE), confirmed=True), ui)
    assert "confirm" not in ui.events


def test_the_safety_gate_refuses_after_showing_the_plan_and_before_any_question(demo: Path) -> None:
    ui = Recording()
    with pytest.raises(DestructiveRefused):
        workflow.apply(request(demo, desired(demo, LINE_OFF)), ui)
    assert ui.events == ["show_plan 1"]


def test_a_saved_plan_is_checked_and_applied_once(demo: Path) -> None:
    assert run(["plan", str(desired(demo, ADD_DAVE)), "--out", "plan.json"]) == ExitCode.OK
    first = Recording()
    workflow.apply(request(demo, demo / "plan.json"), first)
    # The saved plan is the reviewed artifact: applied without asking again.
    assert first.events == ["show_plan 1", "show_checklist", "progress"]
    replay = Recording()
    with pytest.raises(AlreadyApplied):
        workflow.apply(request(demo, demo / "plan.json"), replay)
    assert replay.events == []  # a replay is refused before it is shown


def test_a_stop_is_one_typed_error_with_what_was_done_and_a_rerun_finishes(demo: Path) -> None:
    def ctrl_c(event: ApplyProgress) -> None:
        if event.done == 0:
            os.kill(os.getpid(), signal.SIGINT)  # the executor stops at the next boundary

    ui = Recording(on_progress=ctrl_c)
    with pytest.raises(ApplyStopped) as raised:
        workflow.apply(request(demo, desired(demo, ADD_DAVE)), ui)
    stop = raised.value
    assert stop.interrupted and stop.signal == signal.SIGINT
    assert stop.result.applied == [] and ui.stops == [stop]
    assert ui.events[-1] == "stopped 0/1"

    rest = workflow.apply(request(demo, desired(demo, ADD_DAVE)), Recording())
    assert rest.result is not None and len(rest.result.applied) == 1


def test_a_second_ctrl_c_while_the_stop_is_told_does_not_cut_the_telling_short(demo: Path) -> None:
    """The user insists while `ui.stopped` says what was done: that message is the one
    thing telling them how to recover, so it is finished first (a CI run lost it)."""

    class Insisting(Recording):
        def stopped(self, stop: ApplyStopped, total: int) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, mid-message
            super().stopped(stop, total)

    def ctrl_c(event: ApplyProgress) -> None:
        if event.done == 0:
            os.kill(os.getpid(), signal.SIGINT)

    ui = Insisting(on_progress=ctrl_c)
    with pytest.raises(ApplyStopped):
        workflow.apply(request(demo, desired(demo, ADD_DAVE)), ui)
    assert ui.events[-1] == "stopped 0/1"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_exit_codes_are_one_enum() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "CHANGES": 2,
        "REFUSED": 3,
    }


def test_a_state_uri_of_no_known_kind_fails_before_the_plan_is_shown(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One order for `apply FILE` and `apply DIR`: the store is resolved before planning, so
    # nobody reviews (or confirms) a plan that cannot be applied.
    file = desired(demo, ADD_DAVE)
    capsys.readouterr()
    assert run(["apply", str(file), "--state", "bogus:x", "--auto-approve"]) == ExitCode.ERROR
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Error: unsupported state URI 'bogus:x'"), out + err

"""Removals over the safety threshold carry the threshold as a field of the change, through
the real CLI: the saved plan has it, the safety gate reads it (not the reason's prose), and an
edited threshold is refused like any other edited field of a change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from builders import LINE, channel_state, desired, emails, listed, tenant

from reconciler.cli import run
from reconciler.errors import DestructiveRefused
from reconciler.model import DesiredChannel, SafetySettings
from reconciler.plan import make_plan

# The demo tenant's LINE list is alice, bob and carol: keeping only dave removes three.
ONLY_DAVE = (
    "version: 1\ntenant: example.co.jp\nsafety:\n  max_member_removals: 1\n"
    "external_messaging:\n  line:\n    members:\n      policy: exact\n"
    "      include: [dave@example.co.jp]\n"
)
THRESHOLD = {
    "rule": "max_member_removals",
    "limit": 1,
    "count": 3,
    "list_size": 3,
    "percent": 100.0,
    "min_member_removals": 5,
}


def _plan(root: Path) -> Path:
    (root / "desired.yaml").write_text(ONLY_DAVE, encoding="utf-8")
    assert run(["plan", str(root / "desired.yaml"), "--out", str(root / "plan.json")]) == 0
    return root / "plan.json"


def test_the_saved_plan_carries_the_threshold_on_each_removal_over_it(demo: Path) -> None:
    changes = json.loads(_plan(demo).read_text(encoding="utf-8"))["changes"]
    removals = [c for c in changes if c["action"] == "remove_member"]
    assert len(removals) == 3 and all(c["threshold"] == THRESHOLD for c in removals)
    assert all("threshold" not in c for c in changes if c["action"] != "remove_member")


def test_apply_refuses_with_the_numbers_of_the_threshold(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(demo)
    capsys.readouterr()
    assert run(["apply", str(plan), "--auto-approve"]) == 3
    err = capsys.readouterr().err
    assert (
        "line: removing 3 members exceeds the safety threshold: 3 of 3 listed (100.0 %) "
        "is more than 1 member (safety.max_member_removals)"
    ) in err


def test_an_edited_threshold_is_refused(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_saved_plan_integrity import edited, refused

    def lower(data: dict[str, object]) -> None:
        for change in data["changes"]:  # type: ignore[attr-defined]
            if "threshold" in change:
                change["threshold"]["count"] = 1

    plan = edited(_plan(demo), lower, digests=True)
    err = refused(
        demo, ["apply", str(plan), "--auto-approve", "--allow-destructive"], capsys, code=3
    )
    assert ": threshold is " in err


def test_the_gate_reads_the_threshold_not_the_reason() -> None:
    have = tenant(
        emails("a", "b", "c", "d", "e", "f", "g"),
        line=channel_state(LINE, members=emails("a", "b", "c", "d", "e", "f", "g")),
    )
    want = dataclasses.replace(
        desired(DesiredChannel(members=listed())),
        safety=SafetySettings(max_member_removal_percent=50.0),
    )
    plan = make_plan(want, have, "local:/t.db")
    assert {c.threshold.rule for c in plan.changes if c.threshold} == {"max_member_removal_percent"}
    # Reasons are words for reviewers; the gate's numbers come from the field.
    mute = dataclasses.replace(
        plan, changes=tuple(dataclasses.replace(c, reason="") for c in plan.changes)
    )
    with pytest.raises(DestructiveRefused) as refusal:
        mute.raise_if_unsafe(allow_destructive=False)
    assert (
        "7 of 7 listed (100.0 %) is more than 50 % of the list "
        "(safety.max_member_removal_percent) and more than 5 members"
    ) in str(refusal.value)

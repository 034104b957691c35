"""The last apply's selection, remembered (docs/departments.md#after-a-reorganisation): a
removal says whom the member left, and `lwr drift` counts who joined and left each selector
since the last apply, with the state in either backend (SQLite, PostgreSQL).

Demo company (reconciler/providers/local/demo.py): 営業部 (dave) with 東日本 (alice, bob) and
西日本 (carol, heidi); 開発部 (erin) with 東日本 (frank); 総務部 (grace, heidi); groups
partner-support and managers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import SALES_SELECTORS, lwr_output

from reconciler.cli import run


def reorganise() -> None:
    """kimura joins 営業部/東日本, alice moves to 開発部, carol leaves the company."""
    assert run(["tenant", "join", "kimura@example.co.jp", "--orgunit", "営業部/東日本"]) == 0
    assert run(["tenant", "move", "alice@example.co.jp", "--orgunit", "開発部"]) == 0
    assert run(["tenant", "leave", "carol@example.co.jp"]) == 0


def test_a_removal_says_whom_the_member_left_in_every_format(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_state / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    reorganise()
    code, out = lwr_output(capsys, "plan", "company.yaml")
    assert code == 0
    assert "remove member alice@example.co.jp (left 営業部; company.yaml:8)" in out
    assert "add member kimura@example.co.jp (via org unit 営業部, company.yaml:8)" in out
    code, out = lwr_output(capsys, "plan", "company.yaml", "--format", "json")
    removal = next(c for c in json.loads(out)["changes"] if c["action"] == "remove_member")
    assert removal["because"] == {"rule": "left", "name": "営業部", "line": 8, "via": "orgunit"}
    code, out = lwr_output(capsys, "plan", "company.yaml", "--format", "markdown")
    assert "left 営業部; line 8" in out
    code, out = lwr_output(capsys, "--lang", "ja", "plan", "company.yaml")
    assert "営業部から外れました" in out
    # What plan showed, apply applies: the saved plan is reproduced under the lock.
    assert run(["plan", "company.yaml", "--out", "plan.json"]) == 0
    assert run(["apply", "plan.json"]) == 0
    code, out = lwr_output(capsys, "plan", "company.yaml", "--detailed-exitcode")
    assert code == 0, out


def test_a_member_who_left_a_group_says_so(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = SALES_SELECTORS.replace(
        "include_orgunits: [営業部]", "include_groups: [partner-support]"
    )
    (demo_state / "company.yaml").write_text(group, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    assert run(["tenant", "group", "partner-support", "--remove", "bob@example.co.jp"]) == 0
    code, out = lwr_output(capsys, "plan", "company.yaml")
    assert "remove member bob@example.co.jp (left group partner-support; company.yaml:8)" in out
    code, out = lwr_output(capsys, "--lang", "ja", "plan", "company.yaml")
    assert "グループ partner-support から外れました" in out
    code, out = lwr_output(capsys, "drift", "company.yaml")
    assert code == 2
    assert "0 joined group partner-support since the last apply, 1 left" in out


def test_drift_counts_who_joined_and_left_each_selector_since_the_last_apply(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_state / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    reorganise()
    code, out = lwr_output(capsys, "drift", "company.yaml")
    assert code == 2
    assert "1 joined 営業部 since the last apply, 2 left" in out
    assert "kimura@example.co.jp" in out
    code, out = lwr_output(capsys, "drift", "company.yaml", "--format", "json")
    report = json.loads(out)
    assert report["selection"] == [
        {
            "channel": "line",
            "rule": "orgunit",
            "name": "営業部",
            "joined": 1,
            "left": 2,
            "joined_emails": ["kimura@example.co.jp"],
            "left_emails": ["alice@example.co.jp", "carol@example.co.jp"],
        }
    ]
    code, out = lwr_output(capsys, "drift", "company.yaml", "--format", "markdown")
    assert "1 joined 営業部 since the last apply, 2 left" in out
    assert "`+kimura@example.co.jp`" in out
    code, out = lwr_output(capsys, "--lang", "ja", "drift", "company.yaml")
    assert "前回の適用以降、営業部に1人が加わり、2人が外れました" in out
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0  # the new selection is kept
    code, out = lwr_output(capsys, "drift", "company.yaml", "--format", "json")
    assert json.loads(out)["selection"] == []


def test_without_a_recorded_selection_nothing_is_said_of_churn(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_state / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    reorganise()
    code, out = lwr_output(capsys, "drift", "company.yaml", "--format", "json")
    assert "selection" not in json.loads(out)
    code, out = lwr_output(capsys, "drift", "company.yaml")
    assert "since the last apply" not in out
    code, out = lwr_output(capsys, "plan", "company.yaml")
    assert code == 0
    assert "remove member alice@example.co.jp (not selected; company.yaml:6)" in out


def test_a_directory_plan_saved_and_applied_says_whom_members_left(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lwr plan DIR --out PLANDIR` reads the last selection as `lwr plan FILE` does, so the
    saved plans are reproduced when `lwr apply PLANDIR` plans them again under the lock."""
    tenants = demo_state / "tenants"
    tenants.mkdir()
    (demo_state / "tenant.db").rename(tenants / "example.co.jp.db")
    uri = f"local:{tenants}/example.co.jp.db"
    desired = demo_state / "desired"
    desired.mkdir()
    (desired / "example.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    template = f"local:{tenants}/{{tenant}}.db"
    assert run(["apply", str(desired), "--tenant", template, "--auto-approve"]) == 0
    assert (
        run(["tenant", "move", "alice@example.co.jp", "--orgunit", "開発部", "--tenant", uri]) == 0
    )
    code, out = lwr_output(capsys, "plan", str(desired), "--tenant", template, "--out", "plans")
    assert code == 0, out
    saved = json.loads(next((demo_state / "plans").glob("*example*.json")).read_text("utf-8"))
    assert [c["because"]["rule"] for c in saved["changes"]] == ["left"]
    code, out = lwr_output(capsys, "apply", "plans", "--tenant", template, "--auto-approve")
    assert code == 0, out

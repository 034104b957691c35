"""Members by department through the real CLI (docs/departments.md): the demo company's org
units and groups, HR changes with `lwr tenant join/move/leave`, a reorganisation.

Demo company (reconciler/providers/local/demo.py): 営業部 (dave) with 東日本 (alice, bob) and
西日本 (carol, heidi); 開発部 (erin) with 東日本 (frank); 総務部 (grace, heidi); groups
partner-support and managers. The LINE list starts as alice, bob, carol.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import SALES_SELECTORS, lwr_output

from reconciler.cli import run


def plan(capsys: pytest.CaptureFixture[str], file: str, *args: str) -> tuple[int, str]:
    return lwr_output(capsys, "plan", file, *args)


def line_list(capsys: pytest.CaptureFixture[str]) -> set[str]:
    capsys.readouterr()
    assert run(["show", "--format", "json"]) == 0
    state = json.loads(capsys.readouterr().out)
    return set(state["channels"]["line"]["members"])


def test_a_department_list_follows_joins_moves_and_leaves(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    code, out = plan(capsys, "company.yaml")
    assert code == 0
    assert "+ line       add member dave@example.co.jp (via org unit 営業部, company.yaml:8)" in out
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    assert line_list(capsys) == {f"{u}@example.co.jp" for u in ("alice", "bob", "carol", "dave")}
    assert plan(capsys, "company.yaml", "--detailed-exitcode")[0] == 0

    assert run(["tenant", "join", "kimura@example.co.jp", "--orgunit", "営業部/東日本"]) == 0
    assert run(["tenant", "move", "alice@example.co.jp", "--orgunit", "開発部"]) == 0
    assert run(["tenant", "leave", "carol@example.co.jp"]) == 0
    code, out = plan(capsys, "company.yaml", "--detailed-exitcode")
    assert code == 2
    assert "add member kimura@example.co.jp (via org unit 営業部, company.yaml:8)" in out
    # The last apply's selection had alice through 営業部 (tests/test_selection_memory.py).
    assert "remove member alice@example.co.jp (left 営業部; company.yaml:8)" in out
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    assert line_list(capsys) == {f"{u}@example.co.jp" for u in ("bob", "dave", "kimura")}
    assert plan(capsys, "company.yaml", "--detailed-exitcode")[0] == 0  # one apply converged


def test_the_json_plan_says_why_for_every_change(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    code, out = plan(capsys, "company.yaml", "--format", "json")
    assert code == 0
    changes = json.loads(out)["changes"]
    assert [c["because"] for c in changes] == [{"rule": "orgunit", "name": "営業部", "line": 8}]


def test_a_reorganisation_that_empties_the_list_needs_allow_destructive(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    for person in ("alice", "bob", "carol", "dave"):  # 営業部 is dissolved into 開発部
        assert run(["tenant", "move", f"{person}@example.co.jp", "--orgunit", "開発部"]) == 0
    out = plan(capsys, "company.yaml")[1]
    assert "select nobody now, which would empty the list" in out
    assert "(destructive)" in out
    capsys.readouterr()
    assert run(["apply", "company.yaml", "--auto-approve"]) == 3
    assert "--allow-destructive" in capsys.readouterr().err
    assert len(line_list(capsys)) == 4  # nothing was removed
    assert run(["apply", "company.yaml", "--auto-approve", "--allow-destructive"]) == 0
    assert line_list(capsys) == set()


def test_selector_names_are_checked_against_the_directory(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "ambiguous.yaml").write_text(
        SALES_SELECTORS.replace("[営業部]", "[東日本]"), encoding="utf-8"
    )
    (demo / "typo.yaml").write_text(SALES_SELECTORS.replace("[営業部]", "[営業]"), encoding="utf-8")
    tenant = f"local:{demo}/tenant.db"
    capsys.readouterr()
    assert run(["validate", "ambiguous.yaml", "--tenant", tenant]) == 1
    err = capsys.readouterr().err
    assert "ambiguous.yaml:8:26: external_messaging.line.members.include_orgunits[0]" in err
    assert "write the one you mean as a path: 営業部/東日本, 開発部/東日本" in err
    assert run(["plan", "typo.yaml"]) == 1
    err = capsys.readouterr().err
    assert "no org unit '営業' in the directory" in err and "did you mean '営業部'?" in err
    assert "Traceback" not in err


def test_selector_names_are_checked_in_japanese_at_the_same_place(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "ambiguous.yaml").write_text(
        SALES_SELECTORS.replace("[営業部]", "[東日本]"), encoding="utf-8"
    )
    (demo / "typo.yaml").write_text(SALES_SELECTORS.replace("[営業部]", "[営業]"), encoding="utf-8")
    stranger = SALES_SELECTORS.replace("heidi@", "nobody@")
    (demo / "stranger.yaml").write_text(stranger, encoding="utf-8")
    capsys.readouterr()
    assert run(["--lang", "ja", "plan", "ambiguous.yaml"]) == 1
    err = capsys.readouterr().err
    assert "ambiguous.yaml:8:26: external_messaging.line.members.include_orgunits[0]: " in err
    assert "組織名 '東日本' は 2 組織で使われています" in err
    assert "ヒント: どの組織かをパスで書いてください: 営業部/東日本, 開発部/東日本" in err
    assert run(["--lang", "ja", "plan", "typo.yaml"]) == 1
    err = capsys.readouterr().err
    assert "typo.yaml:8:26: external_messaging.line.members.include_orgunits[0]: " in err
    assert "ディレクトリに組織 '営業' がありません" in err
    assert (
        "ヒント: '営業部' のことですか？ ディレクトリに表示されるとおりの名前を書いてください"
        in err
    )
    where = "stranger.yaml:9:17: external_messaging.line.members.exclude[0]: "
    assert run(["--lang", "en", "plan", "stranger.yaml"]) == 1
    err = capsys.readouterr().err
    assert where + "nobody@example.co.jp is not a member of tenant example.co.jp" in err
    assert run(["--lang", "ja", "plan", "stranger.yaml"]) == 1
    err = capsys.readouterr().err
    assert where + "nobody@example.co.jp はテナント example.co.jp のメンバーではありません" in err
    assert "not a member" not in err and "Traceback" not in err


def test_a_saved_plan_is_refused_when_the_selection_changed_since(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["plan", "company.yaml", "--out", "plan.json"]) == 0
    saved = json.loads((demo / "plan.json").read_text(encoding="utf-8"))
    assert saved["changes"][0]["because"] == {"rule": "orgunit", "name": "営業部", "line": 8}
    assert run(["tenant", "move", "dave@example.co.jp", "--orgunit", "総務部"]) == 0
    capsys.readouterr()
    assert run(["apply", "plan.json"]) == 3  # the plan would grant dave, who left 営業部
    assert "the plan was edited or the tenant changed" in capsys.readouterr().err
    assert "dave@example.co.jp" not in line_list(capsys)
    assert run(["tenant", "move", "dave@example.co.jp", "--orgunit", "営業部"]) == 0
    assert run(["apply", "plan.json"]) == 0
    assert "dave@example.co.jp" in line_list(capsys)


def test_export_with_selectors_round_trips_to_no_changes(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0  # alice bob carol dave
    assert run(["export", "--selectors", "--out", "exported.yaml"]) == 0
    exported = (demo / "exported.yaml").read_text(encoding="utf-8")
    assert "include_orgunits:\n      - 営業部/東日本\n" in exported  # 東日本 repeats: a path
    assert plan(capsys, "exported.yaml", "--detailed-exitcode")[0] == 0

"""`lwr` through its real entry point: in-process via cli.run, and a few real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from localdb import room_lists

from reconciler.cli import run
from reconciler.providers.local import LocalTenant
from reconciler.resources import load_schema

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
GREETING = "友だち追加ありがとうございます。営業時間は 9:00〜18:00（JST）です。"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def line_members(root: Path) -> frozenset[str]:
    with LocalTenant.open(root / "tenant.db") as t:
        return t.read().channels["line"].members  # type: ignore[index]


def test_plan_shows_ordered_changes_with_markers_and_side_effects(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    order = [
        "turn channel on",
        "restrict file transfer",
        "remove member carol@",
        "add member dave@",
        "grant to all members",
        "automatic greeting",
    ]
    positions = [out.index(step) for step in order]
    assert positions == sorted(positions)
    assert "  - line       remove member carol@example.co.jp" in out
    assert "loses external chat with LINE users; 1 open room" in out
    assert GREETING in out  # Japanese text unescaped
    assert "Plan: 7 changes" in out


def test_apply_then_plan_is_empty_and_audited(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    assert "Apply complete: 7 changes applied" in capsys.readouterr().out
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 0
    assert "No changes" in capsys.readouterr().out
    assert run(["audit"]) == 0
    log = capsys.readouterr().out
    assert "remove_member carol@example.co.jp" in log and "applied" in log
    assert run(["audit", "--verify"]) == 0
    assert "hash chain intact" in capsys.readouterr().out
    assert run(["audit", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in entries] == list(range(1, 8))
    greeting = next(e for e in entries if e["action"] == "set_greeting")
    assert GREETING in greeting["after"]["message"]


def test_apply_needs_confirmation_when_not_on_a_terminal(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = line_members(demo)
    assert run(["apply", str(EXAMPLE)]) == 1
    assert "--auto-approve" in capsys.readouterr().err
    assert line_members(demo) == before


def test_destructive_apply_refused_without_flag_and_nothing_changes(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = write(
        demo / "off.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    enabled: false\n",
    )
    assert run(["apply", off, "--auto-approve"]) == 3
    err = capsys.readouterr().err
    assert "--allow-destructive" in err and "line/disable_channel" in err
    with LocalTenant.open(demo / "tenant.db") as t:
        assert t.read().channels["line"].enabled  # type: ignore[index]
    assert run(["apply", off, "--auto-approve", "--allow-destructive"]) == 0
    capsys.readouterr()
    with LocalTenant.open(demo / "tenant.db") as t:
        assert not t.read().channels["line"].enabled  # type: ignore[index]
        assert room_lists(t).member_side == ()  # rooms hidden from members' lists


def test_wrong_tenant_is_refused(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = write(
        demo / "other.yaml",
        "version: 1\ntenant: other.co.jp\nexternal_messaging:\n  line:\n    enabled: true\n",
    )
    assert run(["plan", other]) == 3
    err = capsys.readouterr().err
    assert "other.co.jp" in err and "example.co.jp" in err


def test_invalid_file_reports_every_error_with_position(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(
        demo / "bad.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  line:\n    enabeld: true\n  lineworks:\n    greeting:\n      enabled: true\n",
    )
    assert run(["validate", bad]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5:5" in err and "enabled" in err  # the typo and its suggestion
    assert f"{bad}:7:5" in err  # greeting on lineworks
    assert "Traceback" not in err


def test_validate_with_tenant_checks_the_directory(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = write(
        demo / "m.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  line:\n    members:\n      include:\n        - alice@example.co.jp\n"
        "        - zed@example.co.jp\n",
    )
    tenant_uri = os.environ["LWR_TENANT"]
    monkeypatch.delenv("LWR_TENANT")  # it counts as --tenant (tests/test_habits.py)
    assert run(["validate", f]) == 0
    capsys.readouterr()
    assert run(["validate", f, "--tenant", tenant_uri]) == 1
    assert f"{f}:8:11" in capsys.readouterr().err


def test_export_round_trips_and_keeps_japanese(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["export", "--out", str(demo / "exported.yaml")]) == 0
    text = (demo / "exported.yaml").read_text(encoding="utf-8")
    assert GREETING in text and "\\u" not in text
    assert run(["plan", str(demo / "exported.yaml"), "--detailed-exitcode"]) == 0


def test_saved_plan_applies_and_goes_stale_when_tenant_changes(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = demo_state
    plan_file = demo / "plan.json"
    assert run(["plan", str(EXAMPLE), "--out", str(plan_file), "--format", "json"]) == 0
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    jsonschema.validate(data, load_schema("plan.schema.json"))
    assert data["changes"][0]["action"] == "enable_channel"
    assert GREETING in plan_file.read_text(encoding="utf-8")

    assert run(["tenant", "join", "newbie@example.co.jp"]) == 0
    assert run(["apply", str(plan_file), "--auto-approve"]) == 3
    assert "changed since the plan was made" in capsys.readouterr().err

    assert run(["plan", str(EXAMPLE), "--out", str(plan_file)]) == 0
    assert run(["apply", str(plan_file), "--auto-approve"]) == 0
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 0


def test_markdown_plan_calls_out_destructive_changes(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = write(
        demo / "off.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    enabled: false\n",
    )
    assert run(["plan", off, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "[!CAUTION]" in out and "turn channel off" in out
    assert "3 open rooms with LINE users disappear" in out


def test_drift_exit_codes(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["drift", str(EXAMPLE)]) == 2
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    assert run(["drift", str(EXAMPLE)]) == 0
    assert "In sync" in capsys.readouterr().out


def test_new_hire_with_auto_grant_drifts_from_exact_list(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(
        demo / "auto.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  line:\n    auto_grant_new_members: true\n    members:\n      policy: exact\n"
        "      include: [alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]\n",
    )
    assert run(["apply", f, "--auto-approve"]) == 0
    assert "will drift from the list" in capsys.readouterr().out
    assert run(["tenant", "join", "newbie@example.co.jp", "--name", "新人 太郎"]) == 0
    assert "newbie@example.co.jp" in line_members(demo)
    assert run(["drift", f]) == 2
    assert "- 1 on the list, not in the file: newbie@example.co.jp" in capsys.readouterr().out


def test_contact_delivers_greeting_after_apply(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    assert run(["tenant", "contact", "dave@example.co.jp", "U-new", "--channel", "line"]) == 0
    assert "received the greeting" in capsys.readouterr().out
    assert run(["tenant", "messages", "--search", "営業時間"]) == 0
    assert "dave@example.co.jp" in capsys.readouterr().out
    # carol was removed from the LINE list: an external user can no longer reach her
    assert run(["tenant", "contact", "carol@example.co.jp", "U-x", "--channel", "line"]) == 1


def test_show_json_lists_state(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["show", "--format", "json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["channels"]["line"]["members"] == [
        "alice@example.co.jp",
        "bob@example.co.jp",
        "carol@example.co.jp",
    ]
    assert state["channels"]["lineworks"]["enabled"] is False


def test_missing_tenant_says_how_to_create_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["show", "--tenant", f"local:{tmp_path}/none.db"]) == 1
    assert "lwr tenant init" in capsys.readouterr().err


def test_real_subprocess_entry_points(demo: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    lwr = Path(sys.executable).parent / "lwr"
    proc = subprocess.run(
        [str(lwr), "plan", str(EXAMPLE), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["total"] == 7
    bad = write(demo / "junk.yaml", "version: [1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", bad],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and f"{bad}:" in proc.stderr


def test_second_apply_is_refused_while_the_lock_is_held(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import closing

    from reconciler.store import open_store

    demo = demo_state
    key = f"local:{(demo / 'tenant.db').resolve()}"
    with closing(open_store(os.environ["LWR_STATE"], key)) as store, store.lock(key, "apply"):
        assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 3
    err = capsys.readouterr().err
    assert "apply" in err and str(os.getpid()) in err
    assert line_members(demo) == frozenset(
        {"alice@example.co.jp", "bob@example.co.jp", "carol@example.co.jp"}
    )


def test_list_of_a_channel_left_off_is_located_in_the_file(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(
        demo / "lw.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  lineworks:\n    members:\n      include: [alice@example.co.jp]\n",
    )
    assert run(["plan", f]) == 1
    err = capsys.readouterr().err
    assert f"{f}:5:5: external_messaging.lineworks.members" in err
    assert "enabled: true" in err


def test_control_characters_never_reach_the_terminal(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    esc = write(
        demo / "esc.yaml",
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  line:\n    greeting:\n      enabled: true\n"
        '      message: "Hi \\x1b[2J\\x1b]0;pwned\\x07"\n',
    )
    assert run(["validate", esc]) == 1
    assert "remove control characters" in capsys.readouterr().err
    # A greeting set in the console (here: straight on the tenant) is shown, not obeyed.
    from reconciler.actions import Action, Change, change_id
    from reconciler.model import ChannelName

    with LocalTenant.open(demo / "tenant.db") as t:
        t.apply(
            [
                Change(
                    change_id(Action.SET_GREETING, ChannelName.LINE),
                    Action.SET_GREETING,
                    ChannelName.LINE,
                    None,
                    {},
                    {"message": "Hi \x1b[2J"},
                )
            ]
        )
    assert run(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "Hi \\x1b[2J" in out


def test_state_commands_behave_the_same_on_both_backends(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import closing

    from reconciler.store import open_store

    state = os.environ["LWR_STATE"]
    sqlite = state.startswith("local:")
    assert run(["state", "migrate"]) == 0
    first = capsys.readouterr().out
    # A PostgreSQL state was migrated by the fixture; an SQLite one is created on first use.
    assert ("migrated from version 0 to 4" if sqlite else "up to date (version 4)") in first
    assert run(["state", "migrate"]) == 0
    assert "up to date (version 4)" in capsys.readouterr().out
    assert run(["lock", "list"]) == 0
    assert "No locks held" in capsys.readouterr().out
    key = f"local:{(demo_state / 'tenant.db').resolve()}"
    with closing(open_store(state, key)) as store, store.lock(key, "apply"):
        assert run(["lock", "list", "--format", "json"]) == 0
        [held] = json.loads(capsys.readouterr().out)
        assert (held["tenant"], held["pid"], held["operation"]) == (key, os.getpid(), "apply")
        assert held["stale"] is False
        assert run(["lock", "list"]) == 0
        listed = capsys.readouterr().out
        assert key in listed and "STILL" in listed  # its holder is running: not stale

"""Japanese for the apply flow, the fleet views and --help: progress, stops and the results
summary say it in the reader's language; Japanese greetings and member names pass through the
markdown plan, the progress report and the fleet views unescaped in both languages; every
command's help is Japanese with --lang ja and fits the terminal by display width."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest
from test_render import golden_plan

from reconciler.actions import Phase
from reconciler.apply import ApplyResult
from reconciler.cli import run
from reconciler.errors import ExitCode
from reconciler.fleet import TenantResult
from reconciler.i18n import ENGLISH, Messages
from reconciler.outcomes import ApplyProgress, Blocked, Blocker
from reconciler.plan import Plan
from reconciler.providers.base import Refusal
from reconciler.render.applied import stopped_message
from reconciler.render.fleet import render_markdown, render_text
from reconciler.render.markdown import PlanMarkdown
from reconciler.render.progress import failure_report, progress_line
from reconciler.stopped import ApplyStopped

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "company.yaml"
JA = Messages("ja")
GREETING = "友だち追加ありがとうございます。"
NAME = "山田太郎@example.co.jp"


def named_plan() -> Plan:
    """The golden plan with a Japanese member name on its first member change."""
    plan = golden_plan()
    first = next(c for c in plan.changes if c.spec.member_level)
    named = dataclasses.replace(first, target=NAME, id=f"line/remove_member/{NAME}")
    return dataclasses.replace(plan, changes=(named, *plan.changes[1:]))


@pytest.mark.parametrize("t", [ENGLISH, JA], ids=["en", "ja"])
def test_japanese_names_and_greeting_pass_through_markdown_progress_and_fleet(
    t: Messages,
) -> None:
    plan = named_plan()
    markdown = PlanMarkdown(messages=t, compact=False).render(plan)
    assert f"`{NAME}`" in markdown and GREETING in markdown
    result = ApplyResult("run-1", applied=["line/restrict_file_transfer"])
    result.refused.append(Refusal(f"line/remove_member/{NAME}", f"{NAME} は退職済みです"))
    report = failure_report(result, {c.id: c for c in plan.changes}, t)
    assert f"line/remove_member/{NAME}: {NAME} は退職済みです" in report
    tenant = TenantResult(
        "fleet/株式会社例.yaml",
        "example.co.jp",
        "local:t.db",
        "changes",
        ExitCode.OK,
        24,
        plan=plan,
    )
    text = render_text([tenant], messages=t)
    assert "株式会社例.yaml" in text and NAME in text and GREETING in text
    md = render_markdown([tenant], messages=t)
    assert "株式会社例.yaml" in md and f"`{NAME}`" in md and GREETING in md


def test_progress_line_in_japanese() -> None:
    event = ApplyProgress(Phase.ADD, 6, 10, refused=1, skipped=1, eta=65.0)
    line = progress_line(event, 2.0, JA)
    assert line == (
        "適用済み 4/10（40 %） · 拒否 1 件 · 見送り 1 件 · 段階 4 利用メンバーの追加 · 3.0/s · "
        "残り時間 1 分 5 秒"
    )
    assert progress_line(event, 2.0) == (
        "applied 4/10 (40 %) · 1 refused · 1 skipped · phase 4 add members · 3.0/s · ETA 1 min 5 s"
    )


def test_failure_report_and_skipped_reasons_in_japanese() -> None:
    plan = golden_plan()
    changes = {c.id: c for c in plan.changes}
    tighten = next(c for c in plan.changes if c.phase is Phase.TIGHTEN)
    later = next(c for c in plan.changes if c.phase is Phase.ADD)
    blocker = Blocker()
    blocker.refused(tighten)
    blocked = blocker.check(later)
    assert isinstance(blocked, Blocked)
    assert blocked.reason == f"depends on {tighten.id}, which was not made ({tighten.id} refused)"
    result = ApplyResult("run-1", applied=["a"], refused=[Refusal(tighten.id, "busy")])
    result.blocked.append(blocked)
    report = failure_report(result, changes, JA)
    assert report.splitlines()[0] == (
        "適用できなかった変更があります: テナントが拒否した変更 1 件、拒否された変更が必要なため"
        "見送った変更 1 件。適用済みは 1 件です（実行 run-1）。"
    )
    assert f"  拒否    {tighten.id}: busy" in report
    assert (
        f"  見送り  {later.id}: {tighten.id} に依存していますが、{tighten.id} は行われて" in report
    )
    assert "対応: 原因を取り除いてから `lwr plan` を実行し" in report


def test_a_stopped_apply_says_how_far_it_got_in_japanese() -> None:
    result = ApplyResult("run-7", applied=["a", "b"])
    stop = ApplyStopped(result, KeyboardInterrupt("stop"), signal.SIGTERM)
    assert stopped_message(stop, 5, JA) == (
        "SIGTERM を受けて、バッチの区切りで適用を停止しました: 変更 5 件中 2 件を適用済み"
        "（実行 run-7）。ジャーナルは整合しており、ロックも解放済みです。もう一度 apply を"
        "実行すると残りを完了します。"
    )
    assert stopped_message(stop, 5).startswith(
        "Apply stopped by SIGTERM between batches: 2 of 5 changes applied (run run-7)."
    )


def test_apply_progress_and_summary_in_japanese_through_the_cli(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--lang", "ja", "apply", str(EXAMPLE), "--auto-approve"]) == 0
    out, err = capsys.readouterr()
    assert "適用済み 7/7（100 %） · 段階 5 あいさつメッセージ" in err  # a pipe: plain lines
    assert "適用が完了しました: 変更 7 件を適用しました（実行 " in out
    assert GREETING in out


def test_fleet_text_in_japanese_lines_up_by_display_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "example.co.jp.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), "utf-8")
    template = f"local:{tmp_path}/{{tenant}}.db"
    assert run(["tenant", "init", "--demo", "--tenant", f"local:{tmp_path}/example.co.jp.db"]) == 0
    capsys.readouterr()
    assert run(["--lang", "ja", "plan", str(fleet), "--tenant", template]) == 0
    out = capsys.readouterr().out
    head, rule, row = out.splitlines()[-5:-2]
    assert head.split() == ["テナント", "ファイル", "変更", "破壊的", "結果"]
    assert row.split() == ["example.co.jp", "example.co.jp.yaml", "7", "0", "変更あり"]
    from reconciler.render.values import cells

    # each column starts where its header does: headers count two cells a character
    assert [cells(head[: head.index(w)]) for w in ("ファイル", "変更", "結果")] == [
        rule.index(" " + "-") + 1,
        rule.index(" -", rule.index(" -") + 1) + 1,
        rule.rindex(" -") + 1,
    ]
    assert out.splitlines()[-1] == "テナント 1 件: 変更あり 1。変更は合計 7 件"


def _every_command() -> list[list[str]]:
    from reconciler.cli import cli
    from reconciler.cli.lazy import load_all

    load_all()
    paths: list[list[str]] = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name in group.list_commands(click.Context(group)):
            command = group.get_command(click.Context(group), name)
            assert command is not None
            paths.append([*path, name])
            if isinstance(command, click.Group):
                walk(command, [*path, name])

    walk(cli, [])
    return paths


def test_every_help_page_is_japanese_with_lang_ja_and_fits_80_cells(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.cli import cli
    from reconciler.render.values import cells

    monkeypatch.setenv("COLUMNS", "80")
    commands = _every_command()
    assert len(commands) > 20
    for path in [[], *commands]:
        with pytest.raises(SystemExit):
            cli.main(["--lang", "ja", *path, "--help"], prog_name="lwr")
        page = capsys.readouterr().out
        assert page.startswith("使い方: lwr"), path
        assert "オプション:" in page and "このヘルプを表示して終了します。" in page, path
        assert "Options:" not in page and "Show this message" not in page, path
        wide = [line for line in page.splitlines() if cells(line) > 80]
        assert wide == [], (path, wide)
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            found = command.get_command(click.Context(command), name)
            assert found is not None
            command = found
        english = [p.help for p in command.params if isinstance(p, click.Option) and p.help]
        assert not [h for h in english if h in page], path  # each option's help translated


def test_help_language_comes_from_the_environment_and_english_is_unchanged() -> None:
    lwr = str(Path(sys.executable).parent / "lwr")
    env = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    env["COLUMNS"] = "80"
    japanese = subprocess.run(
        [lwr, "--help"], env={**env, "LWR_LANG": "ja"}, capture_output=True, text=True, check=True
    ).stdout
    assert "コマンド:" in japanese and "plan        テナントを読み取って FILE と比較し" in japanese
    english = subprocess.run(
        [lwr, "plan", "--help"],
        env={**env, "LWR_LANG": "en"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert english.startswith("Usage: lwr plan [OPTIONS] FILE\n\n  Read the tenant, diff it")
    assert "  --detailed-exitcode            Exit 2 when there are changes.\n" in english

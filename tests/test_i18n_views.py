"""Japanese beyond the plan: validation errors and hints (their FILE:LINE:COL unchanged),
policy findings in the language a rule is written in, the safety gate's refusal, drift, `show`,
`audit`, `lock list` and the manual-step checklist; and machine output (JSON, exit codes) the
same in both languages.

Regenerate tests/golden/drift.ja.txt like the other golden files (tests/test_render.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from contextlib import closing
from pathlib import Path

import pytest
from builders import DOMAIN, LINE, LW, channel_state, desired, tenant
from test_cli import write
from test_render import check_golden, golden_drift

from reconciler.actions import Action
from reconciler.cli import run
from reconciler.drift import drift_report
from reconciler.i18n import ENGLISH, Messages
from reconciler.model import DesiredChannel, GreetingSpec, MembersSpec
from reconciler.plan import make_plan
from reconciler.policy import evaluate
from reconciler.policy_files import load_policy_file
from reconciler.render.checklist import checklist
from reconciler.render.drift_markdown import DriftMarkdown
from reconciler.render.state import state_text
from reconciler.render.text import DriftText
from reconciler.resources import load_schema

JA = Messages("ja")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "company.yaml"
GREETING = "友だち追加ありがとうございます。\n営業時間は 9:00〜18:00 です。"
NAMES = ("山田太郎@example.co.jp", "佐藤花子@example.co.jp")

BROKEN = """\
version: 1
tenant: example.co.jp
external_messaging:
  line:
    enabled: yes-please
    restrict_file_transfr: true
    members:
      policy: exact
      include: [alice@example.co.jp, Alice@example.co.jp]
"""


def _both(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, tuple[int, str, str]]:
    """(exit code, stdout, stderr) of `lwr --lang L args` for en and ja."""
    results = {}
    for lang in ("en", "ja"):
        code = run(["--lang", lang, *args])
        out, err = capsys.readouterr()
        results[lang] = (code, out, err)
    return results


def _locations(text: str) -> list[str]:
    """The `FILE:LINE:COL: path` of each problem line (the hints and head left out)."""
    return [m.group(1) for m in re.finditer(r"^(\S+:\d+:\d+: \S+): ", text, re.MULTILINE)]


def test_the_same_errors_in_japanese_keep_their_locations(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(demo / "bad.yaml", BROKEN)
    results = _both(capsys, "validate", bad)
    (en_code, _, en), (ja_code, _, ja) = results["en"], results["ja"]
    assert en_code == ja_code == 1
    assert _locations(en) == _locations(ja) and len(_locations(en)) == 3
    assert f"{bad}:6:5: external_messaging.line.restrict_file_transfr: " in ja
    assert en.startswith(f"{bad}: invalid\n3 problems found:") and "hint: did you mean" in en
    assert ja.startswith(f"{bad}: 正しくありません\n問題が 3 件あります:")
    assert "不明なキー 'restrict_file_transfr'" in ja
    assert "ヒント: 'restrict_file_transfer' のことですか？ ここで使えるキー:" in ja
    assert '「true または false」を書く場所に、文字列 "yes-please" が書かれています' in ja
    assert "メンバー Alice@example.co.jp が重複しています（最初は 9 行目の" in ja


def test_yaml_safety_errors_are_japanese_at_the_same_place(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tabbed = write(demo / "tab.yaml", "version: 1\ntenant: x\n\tfoo: 1\n")
    results = _both(capsys, "validate", tabbed)
    assert _locations(results["en"][2]) == _locations(results["ja"][2])
    place = f"{tabbed}:3:1: <document>: "
    assert place in results["en"][2] and place in results["ja"][2]
    assert "YAML として正しくありません" in results["ja"][2]
    assert "インデントには空白を使ってください" in results["ja"][2]


def test_a_file_for_another_tenant_is_refused_in_japanese_with_its_place(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write(demo / "other.yaml", EXAMPLE.read_text().replace(DOMAIN, "other.co.jp"))
    results = _both(capsys, "plan", other)
    assert results["en"][0] == results["ja"][0] == 3
    assert f"{other}:5:1: tenant: the file is for 'other.co.jp'" in results["en"][2]
    assert f"{other}:5:1: tenant: このファイルは 'other.co.jp' 用ですが" in results["ja"][2]


def test_the_gate_refuses_in_japanese_with_the_same_exit_code(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = write(
        demo / "off.yaml",
        f"version: 1\ntenant: {DOMAIN}\nexternal_messaging:\n  line:\n    enabled: false\n",
    )
    results = _both(capsys, "apply", off, "--auto-approve")
    assert results["en"][0] == results["ja"][0] == 3
    assert "refused: the plan has destructive changes and --allow-destructive" in results["en"][2]
    ja = results["ja"][2]
    assert (
        "拒否しました: 実行計画に破壊的な変更があり、--allow-destructive が指定されていません" in ja
    )
    assert "内容を確認してから --allow-destructive を指定してください" in ja
    assert not ja.startswith("エラー")  # a refusal says so itself, as in English


BILINGUAL = """\
rules:
  - id: greeting-reviewed
    severity: warn
    target: desired
    message:
      en: Have the greeting reviewed by the LINE team.
      ja: あいさつメッセージは LINE 担当チームの確認を受けてください。
    rule: false
  - id: ja-only
    severity: warn
    target: desired
    message: {ja: 日本語だけのメッセージです。}
    rule: false
"""


def test_a_policy_message_in_two_languages_shows_the_readers_and_json_keeps_english(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "policies").mkdir()
    write(demo / "policies" / "team.yaml", BILINGUAL)
    args = ("drift", str(EXAMPLE), "--policy-dir", str(demo / "policies"))
    text = _both(capsys, *args)
    assert "Policy [warn] greeting-reviewed: Have the greeting reviewed" in text["en"][1]
    assert (
        "ポリシー [warn] greeting-reviewed: あいさつメッセージは LINE 担当チーム" in text["ja"][1]
    )
    # A message written in Japanese only is shown in every language, and JSON carries it.
    assert "ja-only: 日本語だけのメッセージです。" in text["en"][1]
    machine = _both(capsys, *args, "--format", "json")
    assert machine["en"][0] == machine["ja"][0]
    documents = [json.loads(machine[lang][1]) for lang in ("en", "ja")]
    for doc in documents:
        doc.pop("checked_at")
    assert documents[0] == documents[1]
    messages = {f["id"]: f["message"] for f in documents[0]["policy"]["findings"]}
    assert messages["greeting-reviewed"] == "Have the greeting reviewed by the LINE team."
    assert messages["ja-only"] == "日本語だけのメッセージです。"


def test_the_policy_schema_says_a_message_may_carry_both_languages(tmp_path: Path) -> None:
    message = load_schema("policy.schema.json")["$defs"]["rule"]["properties"]["message"]
    assert "{en: ..., ja: ...}" in message["description"]
    bad = write(tmp_path / "bad.yaml", BILINGUAL.replace("en: Have", "fr: Have"))
    with pytest.raises(Exception, match=r"write the message as text, or as \{en: text, ja: text\}"):
        load_policy_file(bad)


def test_the_shipped_policies_speak_both_languages() -> None:
    from reconciler.policy_files import load_policies

    for rule in load_policies():
        said = dict(rule.messages)
        assert set(said) == {"en", "ja"} and rule.message == said["en"], rule.id
        assert "  " not in said["ja"] and " \n" not in said["ja"], rule.id  # no folded spaces
        assert rule.message_in(JA) == said["ja"] and rule.message_in(ENGLISH) == said["en"]


def _japanese_tenant() -> tuple[object, object]:
    """A file and a tenant whose greeting and member names are Japanese."""
    want = desired(
        line=DesiredChannel(
            greeting=GreetingSpec(True, GREETING),
            members=MembersSpec(False, "exact", frozenset(NAMES[:1])),
        ),
        lineworks=DesiredChannel(enabled=False),
    )
    current = tenant(
        frozenset(NAMES),
        line=channel_state(LINE, members=frozenset(NAMES[1:])),
        lineworks=channel_state(LW, all_members=True, members=frozenset(NAMES)),
    )
    return dataclasses.replace(want, source="会社.yaml"), current


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_japanese_greeting_and_names_pass_unescaped_through_drift_show_and_checklist(
    lang: str,
) -> None:
    t = Messages(lang)  # type: ignore[arg-type]
    want, current = _japanese_tenant()
    plan = make_plan(
        want,  # type: ignore[arg-type]
        current,  # type: ignore[arg-type]
        "lineworks:1",
        lambda a: "manual" if a in (Action.SET_GREETING, Action.ADD_MEMBER) else "api",
    )
    report = drift_report(want, current, plan)  # type: ignore[arg-type]
    drift = DriftText(messages=t).render(report)
    markdown = DriftMarkdown(messages=t).render(report)
    shown = state_text(current, "lineworks:1", t=t)  # type: ignore[arg-type]
    steps = checklist(plan.changes, t)
    for text in (drift, markdown, shown, steps):
        assert NAMES[0] in text or NAMES[1] in text, text
        assert "\\u" not in text
    assert "友だち追加ありがとうございます。⏎営業時間は 9:00〜18:00 です。" in drift
    assert "友だち追加ありがとうございます。⏎営業時間は 9:00〜18:00 です。" in markdown
    assert "友だち追加ありがとうございます。" in steps and NAMES[0] in steps
    assert "会社.yaml" in drift
    if lang == "ja":
        assert (
            "管理者画面 > サービス > トーク > 外部ユーザーとのトーク > LINEユーザーとのトーク"
            in steps
        )
        assert f"{NAMES[0]} を追加して、[保存] を押します" in steps
        assert "テナント example.co.jp（lineworks:1）: メンバー 2 人" in shown
        assert "lineworks — 外部のLINE WORKSユーザーとのトーク: 許可" in shown
        assert "定義ファイルにあり、利用メンバーにない 1 人: 山田太郎@example.co.jp" in drift
        assert "| 設定 | 定義ファイル | 現在 |" in markdown
        assert (
            "定義ファイルにあり、利用メンバーにない 1 人:\n\n- `山田太郎@example.co.jp`" in markdown
        )


def test_the_checklist_says_the_file_switch_by_what_it_does_in_japanese() -> None:
    want = desired(line=DesiredChannel(restrict_file_transfer=True))
    current = tenant(frozenset())
    plan = make_plan(want, current, "lineworks:1", lambda a: "manual")
    ja, en = checklist(plan.changes, JA), checklist(plan.changes)
    wanted = (
        "ファイル送信・添付可否: 「制限する（送信・添付を許可しない）」に設定して、"
        "[保存] を押します"
    )
    assert f"LINEユーザーとのトーク > {wanted}" in ja
    assert ja.startswith(
        "手動作業 1 件（公開 API がないため、管理者が管理者画面で次の順に行います）:"
    )
    assert "> Restrict file transfer/attachment: set On, then press Save" in en


def test_audit_and_lock_list_in_japanese_with_json_unchanged(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.store import open_store

    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    capsys.readouterr()
    audit = _both(capsys, "audit")
    assert audit["en"][0] == audit["ja"][0] == 0
    assert "  applied   line      enable_channel" not in audit["ja"][1]
    assert re.search(r"  適用済み\s+line\s+", audit["ja"][1])
    lines = [len(line.split()) for line in audit["ja"][1].splitlines()]
    assert lines == [len(line.split()) for line in audit["en"][1].splitlines()]
    machine = _both(capsys, "audit", "--format", "json")
    assert machine["en"] == machine["ja"]
    verified = _both(capsys, "audit", "--verify")
    assert verified["en"][0] == verified["ja"][0] == 0
    assert verified["en"][1].startswith("Audit log OK: ")
    assert verified["ja"][1].startswith("監査ログは正常です: ")
    assert _both(capsys, "lock", "list")["ja"][1].endswith("にロックはありません。\n")
    key = f"local:{(demo / 'tenant.db').resolve()}"
    state = f"local:{demo / 'state.db'}"
    with closing(open_store(state, key)) as store, store.lock(key, "apply"):
        held = _both(capsys, "lock", "list")
        assert f"{key}\n  ロックしているのは " in held["ja"][1]
        assert "「まだ実行中です」" in held["ja"][1]
        machine = _both(capsys, "lock", "list", "--format", "json")
        assert machine["en"] == machine["ja"]


def test_show_and_validate_exit_codes_and_json_do_not_change_with_the_language(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _both(capsys, "show", "--format", "json")
    assert shown["en"] == shown["ja"] and shown["en"][0] == 0
    text = _both(capsys, "show")
    assert "line — LINEユーザーとのトーク: 許可" in text["ja"][1]
    assert "line — Chat with LINE users: on" in text["en"][1]
    drift = _both(capsys, "drift", str(EXAMPLE))
    assert drift["en"][0] == drift["ja"][0]
    assert "差分: 設定" in drift["ja"][1]
    valid = _both(capsys, "validate", str(EXAMPLE))
    assert valid["en"][0] == valid["ja"][0] == 0


def test_policy_findings_in_japanese_name_their_places(demo: Path) -> None:
    rules = load_policy_file(write(demo / "team.yaml", BILINGUAL))
    from reconciler.desired import load_desired

    report = evaluate(rules, desired=load_desired(EXAMPLE), plan=None)
    finding = report.findings[0]
    assert finding.lines(JA)[-1].startswith("    ルール: ") and finding.lines()[-1].startswith(
        "    rule: "
    )


def test_japanese_drift_text_golden() -> None:
    check_golden("drift.ja.txt", DriftText(messages=JA).render(golden_drift()))


def test_a_stale_saved_plan_is_refused_in_japanese_with_the_same_exit_code(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", str(EXAMPLE), "--out", "saved.json"]) == 0
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "auto_grant_new_members: false", "auto_grant_new_members: true"
    )
    other = write(demo / "other.yaml", text)
    assert run(["apply", other, "--auto-approve"]) == 0  # the tenant changes under the plan
    capsys.readouterr()
    results = _both(capsys, "apply", "saved.json")
    assert results["en"][0] == results["ja"][0] == 3
    assert "refused: the tenant example.co.jp changed since the plan was made" in results["en"][2]
    assert "拒否しました: 実行計画の作成後（" in results["ja"][2]
    assert "テナント example.co.jp が変わりました" in results["ja"][2]

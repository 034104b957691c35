"""Errors a person causes, in Japanese with --lang ja: through the real `lwr` entry point,
each says its Japanese text with the Japanese 「エラー: 」 prefix (no English `Error:`), exits
with the same code as in English, and keeps what it names (paths, URIs, emails) as given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LWR = str(Path(sys.executable).parent / "lwr")
EXAMPLE = str(ROOT / "examples" / "company.yaml")

#: (arguments, extra environment, the English text, the Japanese text).
CASES: dict[str, tuple[list[str], dict[str, str], str, str]] = {
    "write into a place no file can be made": (
        ["plan", EXAMPLE, "--out", "/proc/lwr-plan.json"],
        {},
        "Error: cannot write /proc/lwr-plan.json: ",
        "エラー: /proc/lwr-plan.json に書き込めません: ",
    ),
    "write below a file": (
        ["plan", EXAMPLE, "--out", "afile/plan.json"],
        {},
        "Error: cannot write afile/plan.json: ",
        "エラー: afile/plan.json に書き込めません: ",
    ),
    "write over the tenant": (
        ["plan", EXAMPLE, "--out", "tenant.db"],
        {},
        "Error: refusing to write tenant.db: it is ",
        "エラー: tenant.db には書き込めません: ",
    ),
    "bad tenant URI": (
        ["plan", EXAMPLE, "--tenant", "foo:bar"],
        {},
        "Error: unknown tenant URI 'foo:bar': expected local:PATH or lineworks:",
        "エラー: 不明なテナント URI 'foo:bar' です。"
        "local:PATH または lineworks: を指定してください",
    ),
    "unknown lineworks option": (
        ["plan", EXAMPLE, "--tenant", "lineworks:?bogus=1"],
        {},
        "Error: unknown lineworks: URI option(s) bogus; known: ",
        "エラー: lineworks: の URI に不明なオプションがあります: bogus。使えるオプション: ",
    ),
    "a secret in a state URL is not shown": (
        ["audit", "--state", "postgresql://u:pa#ss@db/x"],
        {},
        "Error: state URL 'postgresql://u:***@db/x' is not a valid URL: ",
        "エラー: 状態ストアの URL 'postgresql://u:***@db/x' は正しい URL ではありません。",
    ),
    "missing credentials": (
        ["plan", EXAMPLE, "--tenant", "lineworks:"],
        {},
        "Error: the lineworks: tenant needs LW_CLIENT_ID, ",
        "エラー: lineworks: のテナントには LW_CLIENT_ID, ",
    ),
    "credentials file others may read": (
        ["plan", EXAMPLE, "--tenant", "lineworks:"],
        {"LW_CREDENTIALS_FILE": "open-creds"},
        "Error: refusing to use the credentials file open-creds: ",
        "エラー: 認証情報ファイル open-creds は使えません: "
        "グループまたは他のユーザーが読み書きできます（モード 0644）。"
        "`chmod 600 open-creds` を実行してください",
    ),
    "unknown member leaves": (
        ["tenant", "leave", "nobody@example.co.jp"],
        {},
        "Error: nobody@example.co.jp is not in the tenant directory",
        "エラー: nobody@example.co.jp はテナントのディレクトリにいません",
    ),
    "bad --orgunit": (
        ["tenant", "move", "alice@example.co.jp", "--orgunit", "営業"],
        {},
        "Error: no org unit '営業' in the tenant; did you mean '営業部'?",
        "エラー: テナントに組織 '営業' はありません。'営業部' ではありませんか?",
    ),
    "group change naming nobody": (
        ["tenant", "group", "sales"],
        {},
        "Error: say who joins or leaves the group: --add EMAIL or --remove EMAIL",
        "エラー: グループに追加または削除するメンバーを指定してください",
    ),
    "fleet directory without desired files": (
        ["plan", "empty"],
        {},
        "Error: no *.yaml or *.yml desired files in empty",
        "エラー: empty に定義ファイル（*.yaml、*.yml）がありません",
    ),
    "no state store": (
        ["audit", "--state", "local:nowhere.db"],
        {},
        "Error: no state store at nowhere.db: ",
        "エラー: nowhere.db に状態ストアがありません。",
    ),
    "not a tenant file": (
        ["plan", EXAMPLE, "--tenant", "local:not-a-tenant.db"],
        {},
        "not-a-tenant.db is not an lwr tenant: not a SQLite database",
        "not-a-tenant.db は lwr のテナントではありません: SQLite のデータベースではありません",
    ),
    "tenant already there": (
        ["tenant", "init", "--demo", "--tenant", "local:tenant.db"],
        {},
        "tenant.db; use --force to replace it",
        "tenant.db にはすでにテナントがあります。置き換えるには --force を指定してください",
    ),
    "a directory applied without --auto-approve": (
        ["apply", "empty"],
        {},
        "Error: applying a directory asks no questions: review `lwr plan empty` and pass ",
        "エラー: ディレクトリの適用では確認の質問をしません。`lwr plan empty` で内容を確かめてから",
    ),
    "--manual=ask for a directory": (
        ["apply", "empty", "--auto-approve", "--manual", "ask"],
        {},
        "Error: --manual=ask is for a single file",
        "エラー: --manual=ask は 1 つのファイルにだけ使えます。",
    ),
    "the desired file on stdin cannot confirm": (
        ["apply", "-"],
        {},
        "Error: the desired file comes from stdin (-), so stdin cannot answer",
        "エラー: 定義ファイルを標準入力（-）から読むため、確認の質問に標準入力で答えられません。",
    ),
    "no terminal to confirm on": (
        ["apply", EXAMPLE],
        {},
        "Error: refusing to apply without confirmation: stdin is not a terminal",
        "エラー: 確認なしでは適用しません: 標準入力が端末ではありません。",
    ),
    "--manual=ask without a terminal": (
        ["apply", EXAMPLE, "--auto-approve", "--manual", "ask"],
        {},
        "Error: --manual=ask needs a terminal to answer on",
        "エラー: --manual=ask には応答できる端末が必要です。",
    ),
    "a malformed --head": (
        ["audit", "--verify", "--head", "xyz"],
        {},
        "Error: --head 'xyz': expected SEQ:HASH",
        "エラー: --head 'xyz': SEQ:HASH の形で、`lwr audit head` が表示した 2 つの値",
    ),
    "a short audit key": (
        ["apply", EXAMPLE, "--auto-approve"],
        {"LWR_AUDIT_KEY": "short"},
        "Error: LWR_AUDIT_KEY is too short for an audit key (at least 16 bytes)",
        "エラー: LWR_AUDIT_KEY は監査キーとしては短すぎます（16 バイト以上必要です）。",
    ),
}

#: (the saved plan's text, the English problem, the Japanese problem).
NOT_PLANS: dict[str, tuple[str, str, str]] = {
    "not an object": (
        "[1]\n",
        "not a saved plan: the JSON is not an object",
        "保存した実行計画ではありません: JSON がオブジェクトではありません",
    ),
    "NaN": (
        '{"format_version": NaN}\n',
        "not a saved plan: not valid JSON (NaN is not a JSON value)",
        "保存した実行計画ではありません: 正しい JSON ではありません"
        "（NaN は JSON の値ではありません）",
    ),
}


@pytest.mark.parametrize("case", list(NOT_PLANS))
def test_a_file_that_is_no_saved_plan_is_said_in_japanese(demo: Path, case: str) -> None:
    text, english_problem, japanese_problem = NOT_PLANS[case]
    (demo / "p.json").write_text(text)
    english, japanese = (
        _lwr("en", ["show-plan", "p.json"], {}),
        _lwr("ja", ["show-plan", "p.json"], {}),
    )
    assert english.returncode == japanese.returncode == 1
    assert f"p.json: <document>: {english_problem}" in english.stderr
    assert f"p.json: <document>: {japanese_problem}" in japanese.stderr, japanese.stderr
    assert "ヒント: `lwr plan FILE --out PLAN.json` で作ってください" in japanese.stderr


def _lwr(lang: str, args: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    return subprocess.run(
        [LWR, "--lang", lang, *args],
        env={**env, **extra},
        stdin=subprocess.DEVNULL,  # no terminal to confirm on, as in CI
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_errors_say_it_in_japanese_with_the_english_exit_code(demo: Path, case: str) -> None:
    (demo / "afile").write_text("")
    (demo / "empty").mkdir()
    (demo / "not-a-tenant.db").write_text("hello\n")
    (demo / "open-creds").write_text("LW_CLIENT_ID=x\n")
    (demo / "open-creds").chmod(0o644)
    args, extra, english_text, japanese_text = CASES[case]
    english, japanese = _lwr("en", args, extra), _lwr("ja", args, extra)
    assert english.returncode != 0 and japanese.returncode == english.returncode
    assert english_text in english.stderr  # English unchanged
    assert japanese_text in japanese.stderr, japanese.stderr
    assert "Error:" not in japanese.stderr
    assert japanese.stderr.startswith("エラー: ")
    assert "pa#ss" not in english.stderr + japanese.stderr  # redaction kept in both


def test_an_org_unit_path_suggestion_joins_choices_in_japanese(demo: Path) -> None:
    """Several close names are listed with the Japanese separator, never an English "or"."""
    japanese = _lwr("ja", ["tenant", "move", "alice@example.co.jp", "--orgunit", "部"], {})
    english = _lwr("en", ["tenant", "move", "alice@example.co.jp", "--orgunit", "部"], {})
    assert japanese.returncode == english.returncode == 1
    assert (
        " or " not in japanese.stderr
        and "エラー: テナントに組織 '部' はありません" in japanese.stderr
    )


#: (arguments, the English line, the Japanese line) of commands that succeed.
DONE: dict[str, tuple[list[str], str, str]] = {
    "a demo tenant made": (
        ["tenant", "init", "--demo", "--tenant", "local:new.db", "--domain", "新しい.example"],
        "Demo tenant 新しい.example with 8 members created at new.db.",
        "デモ用テナント 新しい.example（メンバー 8 人）を new.db に作成しました。",
    ),
    "no lock to clear": (
        ["unlock", "--yes"],
        "No lock was held",
        "ロックはありませんでした",
    ),
}


@pytest.mark.parametrize("case", list(DONE))
def test_what_a_command_did_is_said_in_japanese(
    demo: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo)
    args, english_line, japanese_line = DONE[case]
    english = _lwr("en", args, {})
    if case == "a demo tenant made":
        (demo / "new.db").unlink()
    japanese = _lwr("ja", args, {})
    assert english.returncode == japanese.returncode == 0, english.stderr + japanese.stderr
    assert english_line in english.stdout
    assert japanese_line in japanese.stdout, japanese.stdout


def test_a_directory_run_says_each_tenant_failure_in_japanese_and_json_stays_english(
    demo: Path,
) -> None:
    """Two files for one tenant: each failure in the summary in the reader's language (the
    list joined the Japanese way), the English count a plural, the JSON the same in both."""
    (demo / "two").mkdir()
    for name in ("a.yaml", "b.yaml"):
        (demo / "two" / name).write_text(Path(EXAMPLE).read_text(encoding="utf-8"))
    args = ["plan", "two", "--tenant", "local:t-{tenant}.db"]
    english, japanese = _lwr("en", args, {}), _lwr("ja", args, {})
    assert english.returncode == japanese.returncode == 1
    assert "2 tenants: 2 errors; 0 changes in all" in english.stdout
    assert "is the tenant of 2 files (a.yaml, b.yaml): one desired file per tenant" in (
        english.stdout
    )
    assert "は 2 個のファイル（a.yaml、b.yaml）のテナントです。" in japanese.stdout, japanese.stdout
    assert "tenant of" not in japanese.stdout
    as_json = [_lwr(lang, [*args, "--format", "json"], {}).stdout for lang in ("en", "ja")]
    assert as_json[0] == as_json[1] and "is the tenant of 2 files" in as_json[0]


def test_an_old_plan_and_a_broken_plan_index_are_said_in_japanese(demo: Path) -> None:
    assert _lwr("en", ["plan", EXAMPLE, "--out", "p.json"], {}).returncode == 0
    document = json.loads((demo / "p.json").read_text(encoding="utf-8"))
    (demo / "old.json").write_text(json.dumps({**document, "format_version": "1.0"}))
    (demo / "pd").mkdir()
    (demo / "pd" / "index.json").write_text("x\n")
    old = _lwr("ja", ["show-plan", "old.json"], {})
    assert old.returncode == 1
    assert "実行計画の format_version '1.0' は、この lwr が読める形式（2.x）より古く" in old.stderr
    assert "ヒント: この lwr で実行計画を作り直してください" in old.stderr
    index = _lwr("ja", ["apply", "pd", "--auto-approve"], {})
    assert index.returncode == 1
    assert "pd/index.json: <document>: 実行計画の一覧ファイルではありません: 正しい JSON では" in (
        index.stderr
    )
    assert "not a plan index" not in old.stderr + index.stderr


#: click's usage errors: (arguments, click's English line, the Japanese line).
USAGE: dict[str, tuple[list[str], str, str]] = {
    "missing argument": (
        ["plan"],
        "Error: Missing argument 'FILE'.",
        "エラー: 引数 'FILE' がありません。",
    ),
    "value not a choice": (
        ["plan", EXAMPLE, "--format", "bogus"],
        "Error: Invalid value for '--format': 'bogus' is not one of 'text', 'json', 'markdown'.",
        "エラー: '--format' の値が正しくありません: 'bogus' は 'text'、'json'、'markdown' の"
        "いずれでもありません。",
    ),
    "unknown command": (
        ["bogus"],
        "Error: No such command 'bogus'.",
        "エラー: 'bogus' というコマンドはありません。",
    ),
    "unknown option with close matches": (
        ["plan", EXAMPLE, "--formt", "json"],
        "Error: No such option '--formt'. (Did you mean one of: '--compact', '--format', '--out'?)",
        "エラー: '--formt' というオプションはありません。'--compact'、'--format'、'--out' の"
        "ことですか？",
    ),
    "a Terraform flag": (
        ["plan", "-detailed-exitcode", EXAMPLE],
        "Error: No such option: -detailed-exitcode: did you mean --detailed-exitcode?",
        "エラー: -detailed-exitcode というオプションはありません。"
        "--detailed-exitcode のことですか？",
    ),
    "an option without its value": (
        ["plan", EXAMPLE, "--out"],
        "Error: Option '--out' requires an argument.",
        "エラー: オプション '--out' には値が必要です。",
    ),
    "a flag given a value": (
        ["unlock", "--yes=1"],
        "Error: Option '--yes' does not take a value.",
        "エラー: オプション '--yes' には値を指定できません。",
    ),
    "an extra argument": (
        ["plan", EXAMPLE, "more.yaml"],
        "Error: Got unexpected extra argument (more.yaml)",
        "エラー: 余分な引数があります（more.yaml）",
    ),
}


@pytest.mark.parametrize("case", list(USAGE))
def test_usage_errors_are_said_in_japanese_and_click_english_is_kept(demo: Path, case: str) -> None:
    args, english_line, japanese_line = USAGE[case]
    english, japanese = _lwr("en", args, {}), _lwr("ja", args, {})
    assert english.returncode == japanese.returncode == 1
    assert english.stderr.rstrip("\n").endswith(english_line), english.stderr
    assert japanese.stderr.rstrip("\n").endswith(japanese_line), japanese.stderr
    assert "Error" not in japanese.stderr and "Usage" not in japanese.stderr


def test_the_simulator_marks_hidden_rooms_in_the_reader_language(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lwr tenant messages` after a member left: the rooms the console hid are marked."""
    monkeypatch.chdir(demo)
    assert _lwr("en", ["tenant", "leave", "alice@example.co.jp"], {}).returncode == 0
    english, japanese = (_lwr(lang, ["tenant", "messages"], {}) for lang in ("en", "ja"))
    assert english.returncode == japanese.returncode == 0
    assert "alice@example.co.jp ↔ U-line-001 [hidden]" in english.stdout
    assert "alice@example.co.jp ↔ U-line-001 [非表示]" in japanese.stdout, japanese.stdout
    assert "[hidden]" not in japanese.stdout

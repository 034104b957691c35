"""Japanese: the language is chosen the usual way, every message has its translation, the
Japanese text plan is pinned by a golden file, and machine output never changes with it.

Regenerate tests/golden/plan.ja.txt and plan.ja.md like the other golden files
(tests/test_render.py).
"""

from __future__ import annotations

import dataclasses
import gettext
import json
import string
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from test_render import check_golden, golden_plan, golden_policy

from reconciler.cli import run
from reconciler.i18n import LOCALE_DIR, Messages, choose_lang
from reconciler.render.text import PlanText
from reconciler.render.values import pad

ROOT = Path(__file__).resolve().parent.parent
PO = LOCALE_DIR / "ja" / "LC_MESSAGES" / "lwr.po"
# The keywords of babel.cfg / `make messages`: Messages._ / n_, N_, Msg.of / Msg.counted.
KEYWORDS = {"_": None, "n_": (1, 2), "N_": None, "of": None, "counted": (1, 2)}
EXAMPLE = ROOT / "examples" / "company.yaml"


def extracted() -> dict[str, tuple[str, ...]]:
    """Every message id in reconciler/, as Babel's extractors find it (id → all its forms):
    the command-line modules' docstrings (their --help) too, as babel.cfg says."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("babel_help", ROOT / "babel_help.py")
    assert spec is not None and spec.loader is not None
    babel_help = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(babel_help)
    method_map = [("cli/**.py", babel_help.extract_command_help), ("**.py", "python")]
    found: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "reconciler"), method_map=method_map, keywords=KEYWORDS
    ):
        forms = message if isinstance(message, tuple) else (message,)
        found[forms[0]] = tuple(forms)
    return found


def names(text: str) -> set[str]:
    """The `{placeholder}` names of a str.format message."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_message_has_a_japanese_translation_with_the_same_placeholders() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ja")
    problems = []
    ids = extracted()
    assert len(ids) > 50  # the extractor found the plan's messages, not nothing
    for msgid, forms in ids.items():
        entry = catalog.get(forms if len(forms) > 1 else msgid)
        if entry is None or not entry.string or not any(entry.string):
            problems.append(f"untranslated: {msgid!r}")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for translated in strings:
            if names(translated) != names(forms[-1]) | names(forms[0]):
                problems.append(f"placeholders differ: {msgid!r} → {translated!r}")
    assert not problems, "run `make messages` and translate:\n" + "\n".join(problems)


def test_the_compiled_catalog_is_the_po_file() -> None:
    """The installed .mo says what the .po says (a stale .mo would hide a translation)."""
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ja")
    mo = gettext.translation("lwr", LOCALE_DIR, languages=["ja"])
    for entry in catalog:
        if not entry.id:
            continue
        if isinstance(entry.id, tuple):
            assert mo.ngettext(entry.id[0], entry.id[1], 2) == entry.string[0], entry.id
        else:
            assert mo.gettext(entry.id) == entry.string, entry.id


@pytest.mark.parametrize(
    ("option", "env", "lang"),
    [
        (None, {}, "en"),
        (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
        (None, {"LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "ja_JP.UTF-8"}, "en"),
        (None, {"LWR_LANG": "ja", "LC_ALL": "en_US.UTF-8"}, "ja"),
        (None, {"LWR_LANG": "en", "LANG": "ja_JP.UTF-8"}, "en"),
        ("en", {"LWR_LANG": "ja", "LANG": "ja_JP.UTF-8"}, "en"),
        ("ja", {"LWR_LANG": "en"}, "ja"),
    ],
)
def test_language_order_option_then_lwr_lang_then_locale(
    option: str | None, env: dict[str, str], lang: str
) -> None:
    assert choose_lang(option, env) == lang


def test_japanese_text_plan_golden() -> None:
    text = PlanText(messages=Messages("ja")).render(golden_plan())
    check_golden("plan.ja.txt", text)


def test_japanese_markdown_plan_golden_has_the_markup_of_the_english_one() -> None:
    from test_escaping import structure

    from reconciler.render.markdown import PlanMarkdown

    text = PlanMarkdown(policy=golden_policy(), messages=Messages("ja")).render(golden_plan())
    check_golden("plan.ja.md", text)
    english = PlanMarkdown(policy=golden_policy()).render(golden_plan())
    # the same document: a translation adds no emphasis, code, link or list and drops none
    assert structure(text) == structure(english)
    assert "**破壊的な変更 9 件**: 適用には `--allow-destructive` が必要です" in text
    assert "<summary>line · 利用メンバーから削除: 8 人（うち破壊的 8 件）</summary>" in text
    assert "友だち追加ありがとうございます。" in text and "\\u" not in text


def test_english_is_unchanged_by_the_catalog() -> None:
    """English output reads the message ids themselves: the English golden is the proof."""
    assert (
        PlanText(policy=golden_policy()).render(golden_plan())
        == (ROOT / "tests/golden/plan.txt").read_text()
    )


def test_display_width_pads_full_width_text_by_cells() -> None:
    assert pad("line", 9) == "line     "
    assert pad("日本語", 9) == "日本語   "  # three full-width characters: six cells
    assert pad("toolongvalue", 4) == "toolongvalue"


def _plan(lang: list[str], *args: str) -> tuple[int, str]:
    return run([*lang, "plan", str(EXAMPLE), *args]), ""


def test_plan_text_in_japanese_through_the_cli(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.delenv("LWR_LANG", raising=False)
    assert run(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "実行計画: 変更 7 件" in out
    assert "ファイル送信・添付の制限: 無効 → 有効" in out
    # the Japanese greeting of the example, unescaped, in both languages
    assert "友だち追加ありがとうございます。" in out
    assert run(["--lang", "en", "plan", str(EXAMPLE)]) == 0
    english = capsys.readouterr().out
    assert "Plan: 7 changes" in english and "友だち追加ありがとうございます。" in english


def same_but_the_clock(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two saved-plan documents alike but for when they were made: the same fields, and the
    same plan digest once both carry the same `created_at` (the digest covers it)."""
    from reconciler.plan import Plan

    def undated(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in {"created_at", "plan_digest"}}

    digests = {dataclasses.replace(Plan.from_json(doc), created_at="").digest for doc in (a, b)}
    return undated(a) == undated(b) and len(digests) == 1


def test_machine_output_and_exit_codes_do_not_change_with_the_language(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for lang in ("en", "ja"):
        code = run(
            ["--lang", lang, "plan", str(EXAMPLE), "--format", "json", "--detailed-exitcode"]
        )
        assert code == 2
        outputs[lang] = json.loads(capsys.readouterr().out)
        code = run(["--lang", lang, "plan", str(EXAMPLE), "--out", f"saved-{lang}.json"])
        assert code == 0
        capsys.readouterr()
    assert same_but_the_clock(outputs["en"], outputs["ja"])
    saved = {
        lang: json.loads((demo / f"saved-{lang}.json").read_text(encoding="utf-8"))
        for lang in ("en", "ja")
    }
    assert same_but_the_clock(saved["en"], saved["ja"])
    assert "text" in json.dumps(saved["ja"]) and "退会" not in json.dumps(saved["ja"])
    # A directory of tenants (fleet): its JSON, its saved PLANDIR and its exit codes.
    fleet = demo / "fleet"
    fleet.mkdir()
    (fleet / "example.co.jp.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), "utf-8")
    tenant = f"local:{demo}/{{tenant}}.db"
    assert run(["tenant", "init", "--demo", "--tenant", f"local:{demo}/example.co.jp.db"]) == 0
    capsys.readouterr()
    runs = {}
    for lang in ("en", "ja"):
        args = ["--lang", lang, "plan", str(fleet), "--tenant", tenant]
        code = run([*args, "--format", "json", "--detailed-exitcode"])
        document = json.loads(capsys.readouterr().out)
        assert run([*args, "--out", str(demo / f"plandir-{lang}")]) == 0
        capsys.readouterr()
        index = json.loads((demo / f"plandir-{lang}" / "index.json").read_text("utf-8"))
        runs[lang] = code, document, index
    (code_en, doc_en, index_en), (code_ja, doc_ja, index_ja) = runs["en"], runs["ja"]
    assert code_en == code_ja == 2
    pairs = zip(doc_en["tenants"], doc_ja["tenants"], strict=True)
    plans = [(a.pop("plan"), b.pop("plan")) for a, b in pairs]
    assert doc_en == doc_ja and all(same_but_the_clock(a, b) for a, b in plans)
    assert doc_ja["tenants"][0]["result"] == "changes"  # the outcome's English word
    assert index_en.keys() == index_ja.keys()


def test_audit_log_is_the_same_in_both_languages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    rows = {}
    for lang in ("en", "ja"):
        tenant = f"local:{tmp_path}/{lang}/tenant.db"
        assert run(["tenant", "init", "--demo", "--tenant", tenant]) == 0
        args = ["--lang", lang, "apply", str(EXAMPLE), "--tenant", tenant, "--auto-approve"]
        assert run(args) == 0
        capsys.readouterr()
        assert run(["--lang", lang, "audit", "--tenant", tenant, "--format", "json"]) == 0
        entries = json.loads(capsys.readouterr().out)
        rows[lang] = [
            {
                k: v
                for k, v in e.items()
                if k in {"action", "channel", "target", "outcome", "change"}
            }
            for e in (entries if isinstance(entries, list) else entries["entries"])
        ]
    assert rows["en"] == rows["ja"] and rows["en"]


def test_japanese_member_names_pass_through_unescaped_in_both_languages() -> None:
    plan = golden_plan()
    first = next(c for c in plan.changes if c.spec.member_level)
    named = dataclasses.replace(first, target="山田太郎@example.co.jp")
    plan = dataclasses.replace(plan, changes=(named, *plan.changes[1:]))
    for lang in ("en", "ja"):
        text = PlanText(messages=Messages(lang)).render(plan)  # type: ignore[arg-type]
        assert "山田太郎@example.co.jp" in text
        assert "友だち追加ありがとうございます。" in text


def _on_a_terminal(argv: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """`lwr argv` with a real terminal on stdin, stdout and stderr; `answer` typed at the
    prompt. Its exit code and everything it wrote."""
    import os
    import pty
    import subprocess
    import sys

    lwr = str(Path(sys.executable).parent / "lwr")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [lwr, *argv], env=env, stdin=follower, stdout=follower, stderr=follower
        )
        os.close(follower)
        os.write(leader, answer)  # the terminal buffers it until lwr reads its answer
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc.wait(timeout=60), b"".join(chunks).decode("utf-8")
    finally:
        os.close(leader)


def test_apply_asks_in_japanese_and_declining_changes_nothing(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in {"LWR_STATE", "LC_ALL"}}
    env.update(LWR_TENANT=f"local:{tmp_path}/tenant.db", LWR_LANG="ja", NO_COLOR="1")
    assert run(["tenant", "init", "--demo", "--tenant", env["LWR_TENANT"]]) == 0
    code, out = _on_a_terminal(["apply", str(EXAMPLE)], env, b"no\n")
    assert "example.co.jp に変更 7 件を適用しますか？ 「yes」と入力した場合のみ適用します" in out
    assert "適用を中止しました。何も変更していません。" in out
    assert code == 1
    code, out = _on_a_terminal(["--lang", "en", "apply", str(EXAMPLE)], env, b"no\n")
    assert "Apply these 7 changes to example.co.jp? Only 'yes' will be accepted" in out
    assert code == 1
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode", "--tenant", env["LWR_TENANT"]]) == 2


def test_a_change_nobody_could_see_is_named_in_japanese(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import unicodedata

    from test_escaping import greeting_file

    nfc = "ガイド"
    assert run(["apply", greeting_file(demo / "now.yaml", nfc), "--auto-approve"]) == 0
    capsys.readouterr()
    wanted = greeting_file(demo / "wanted.yaml", unicodedata.normalize("NFD", nfc))
    assert run(["--lang", "ja", "plan", wanted]) == 0
    out = capsys.readouterr().out
    assert "! メッセージ: Unicode の正規化だけが異なります: NFC → NFD" in out, out


def test_a_missing_catalog_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    from reconciler.errors import FileError

    with pytest.raises(FileError, match=r"cannot read the ja messages .*lwr\.mo.*--lang en"):
        Messages("ja", locale_dir=tmp_path)._("on")
    assert Messages("en", locale_dir=tmp_path)._("on") == "on"  # English needs no catalog


def test_the_compact_plan_counts_members_in_japanese() -> None:
    text = PlanText(messages=Messages("ja"), compact=True).render(golden_plan())
    assert "  + line       利用メンバーに追加: 12 人" in text
    assert "m10@example.co.jp、m11@example.co.jp、" in text and "…ほか 7 人" in text
    assert "簡略表示: 利用メンバーの変更は種類ごとの件数です。" in text

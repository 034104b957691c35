"""Output escaping: user strings are inert in markdown and on terminals, invisible changes shown.

Markdown is checked by rendering it with markdown-it-py as GFM with linkify (the `gfm-like`
preset: tables, strikethrough, autolinks, raw HTML) and asserting on the tokens what comes out
of user strings; GitHub's @mentions and #references, which markdown-it-py does not know, are
checked on the markdown text (every "@" and "#" outside code is followed by a word joiner).
Terminal output and error messages are read from the real CLI. The hostile shapes live in
tests/corpus/escape_*.yaml.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.cli import run
from reconciler.render.markdown import WORD_JOINER, md_code, md_escape, md_fenced, md_html
from reconciler.terminal import printable

CORPUS = Path(__file__).parent / "corpus"
LWR = str(Path(sys.executable).parent / "lwr")
GFM = MarkdownIt("gfm-like")  # html, linkify, tables, strikethrough: what GitHub would show

HOSTILE = [
    "**bold**",
    "__bold__",
    "_em_",
    "*em*",
    "~~strike~~",
    "![img](http://evil.example/p.png)",
    "[link](https://evil.example/)",
    "[ref][1]\n\n[1]: http://evil.example",
    "http://evil.example/a",
    "https://evil.example",
    "<http://evil.example/b>",
    "www.evil.example",
    "evil.com",
    "mail@evil.example",
    "<mail@evil.example>",
    "@org/team",
    "@user",
    "hi @user!",
    "#123",
    "org/repo#123",
    "<img src=https://evil.example/t.png>",
    "<details>",
    "</details>",
    "<!-- hidden -->",
    "<script>alert(1)</script>",
    "a | b | c",
    "`code`",
    "`` a ` b ``",
    "a ```` b",
    "```",
    "x\n# heading",
    "# heading",
    "x\n- item",
    "- item",
    "1. item",
    "x\n> quote",
    "> quote",
    "x\n\n---",
    "    indented",
    "x\n===",
    "&amp; &lt;b&gt; &#64;user",
    "$x^2$",
    "[^1]",
    "[ ] task",
    "\\*not\\*",
    ":smile:",
    "\u202eevil\u202c",
    "a\u2066b\u2069",
    "\x1b[31mred",
    "\x9b31m",
    "tab\there",
    "12. item",
    "1) item",
    "+ item",
    "===",
    "***",
    "___",
    "(http://evil.example)",
    "[x]: http://evil.example",
    "visit evil.example.",
    "mailto:a@evil.example",
    "HTTPS://E.COM",
    "友だち追加ありがとうございます。\n営業時間は 9:00〜18:00 です。",
    " spaced ",
    "",
]
#: Token types a user string must never produce (beyond what lwr's own markup has).
FORBIDDEN = {
    "link_open",
    "image",
    "strong_open",
    "em_open",
    "s_open",
    "html_inline",
    "html_block",
    "heading_open",
    "blockquote_open",
    "bullet_list_open",
    "ordered_list_open",
    "hr",
    "code_block",
    "fence",
    "code_inline",
    "table_open",
    "footnote_ref",
    "math_inline",
}


def tokens(markdown: str) -> list[Token]:
    """Every token of `markdown` as GFM, inline children included, in document order."""
    out: list[Token] = []
    for token in GFM.parse(markdown):
        out.append(token)
        out.extend(token.children or [])
    return out


def text_of(markdown: str) -> str:
    """The text a reader sees of an inline `markdown`."""
    return "".join(t.content for t in tokens(markdown) if t.type in ("text", "text_special"))


def one_line(text: str) -> str:
    return printable(text).replace("\n", "⏎")


def unpinged(markdown: str) -> list[str]:
    """Each "@" or "#" outside code that GitHub could turn into a mention or a reference."""
    bad = []
    for token in tokens(markdown):
        if token.type == "text":
            bad += re.findall(f"[@#](?!{WORD_JOINER})\\w+", token.content)
    return bad


# --------------------------------------------------------------------------- the escapes


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_is_only_text_wherever_it_is_put(text: str) -> None:
    escaped = md_escape(text)
    limit = Counter(dict.fromkeys(FORBIDDEN, 99))
    for context in ("{}", "- `+` {}", "> {}", "| a | b |\n|---|---|\n| {} | x |"):
        found = Counter(t.type for t in tokens(context.format(escaped))) & limit
        own = Counter(t.type for t in tokens(context.format("plain"))) & limit
        assert found == own, (context.format(escaped), found)
    seen = text_of(escaped).replace(WORD_JOINER, "")
    assert seen == one_line(text)  # still readable: exactly the text, controls shown
    assert unpinged(escaped) == []


@pytest.mark.parametrize("text", HOSTILE)
def test_code_spans_hold_the_exact_text_in_a_paragraph_and_in_a_table(text: str) -> None:
    for markdown in (md_code(text), f"| a | b |\n|---|---|\n| {md_code(text, table=True)} | x |"):
        codes = [t for t in tokens(markdown) if t.type == "code_inline"]
        found = {t.type for t in tokens(markdown)} & (FORBIDDEN - {"code_inline", "table_open"})
        assert found == set(), (markdown, found)
        if text:
            assert [c.content for c in codes] == [one_line(text)], markdown
    table = tokens(f"| a | b |\n|---|---|\n| {md_code(text, table=True)} | x |")
    assert sum(1 for t in table if t.type == "td_open") == 2  # no "|" split the row


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)

    def handle_comment(self, data: str) -> None:
        self.tags.append("!--")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("text", HOSTILE)
def test_text_in_a_summary_element_opens_no_tag(text: str) -> None:
    markdown = f"<details>\n<summary>{md_html(text)}: ok</summary>\n\nbody\n\n</details>\n"
    parser = _Tags()
    for token in tokens(markdown):
        if token.type in ("html_block", "html_inline"):
            parser.feed(token.content)
    assert parser.tags == ["details", "summary", "/summary", "/details"], markdown
    shown = "".join(parser.text).strip().replace(WORD_JOINER, "")
    assert shown == f"{one_line(text)}: ok".strip()
    assert re.findall(f"[@#](?!{WORD_JOINER})\\w", "".join(parser.text)) == []


@pytest.mark.parametrize("text", [*HOSTILE, "`\n``\n```\n````\n`````", "``````"])
def test_fenced_text_is_one_code_block_with_the_exact_text(text: str) -> None:
    markdown = f"- item\n\n{md_fenced(text, '  ')}\n- next item\n"
    fences = [t for t in tokens(markdown) if t.type == "fence"]
    assert [f.content for f in fences] == [printable(text) + "\n"]
    assert sum(1 for t in tokens(markdown) if t.type == "list_item_open") == 2


def test_printable_escapes_every_control_format_and_separator_character() -> None:
    # The set is written out in terminal.py; it must hold every one unicodedata knows of.
    for code in range(0x110000):
        ch = chr(code)
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in "\n\t":
            assert printable(ch) != ch and printable(ch).isascii(), hex(code)
    assert (
        printable("\u202eevil\u202c \x9b31m \x1b[2J ok\n\t")
        == "\\u202eevil\\u202c \\x9b31m \\x1b[2J ok\n\t"
    )
    assert printable("\U000e0041") == "\\U000e0041"  # a tag character (hidden ASCII)
    assert printable(printable("\x1b\u2066")) == printable("\x1b\u2066")
    assert printable("友だち 😀") == "友だち 😀"


# --------------------------------------------------------------------------- through the CLI


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def greeting_file(path: Path, message: str, members: list[str] | None = None) -> str:
    doc: dict[str, object] = {
        "version": 1,
        "tenant": "example.co.jp",
        "external_messaging": {"line": {"greeting": {"enabled": True, "message": message}}},
    }
    if members is not None:
        doc["external_messaging"]["line"]["members"] = {  # type: ignore[index]
            "policy": "additive",
            "include": members,
        }
    return write(path, json.dumps(doc))  # \u escapes: YAML refuses some characters raw


def structure(markdown: str) -> Counter[str]:
    """How many of each markup token `markdown` has: equal for equal documents of any text."""
    return Counter(t.type for t in tokens(markdown) if t.type not in ("text", "softbreak"))


def corpus(name: str) -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))
    return doc


def corpus_greeting(name: str) -> str:
    return str(corpus(name)["external_messaging"]["line"]["greeting"]["message"])


MD_MEMBERS: list[str] = corpus("escape_markdown_members.yaml")["external_messaging"]["line"][
    "members"
]["include"]
PLAIN_MEMBERS = [f"plain{i}@example.co.jp" for i in range(len(MD_MEMBERS))]


def _has_greeting(name: str) -> bool:
    try:
        return isinstance(corpus(name)["external_messaging"]["line"]["greeting"]["message"], str)
    except Exception:  # broken on purpose (e.g. an escaped surrogate): test_fuzz has those
        return False


GREETING_CASES = sorted(p.name for p in CORPUS.glob("escape_*.yaml") if _has_greeting(p.name))


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("case", GREETING_CASES)
def test_plan_markdown_of_a_hostile_greeting_and_members_has_only_lwrs_own_markup(
    case: str, lang: str, demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for email in MD_MEMBERS + PLAIN_MEMBERS:
        assert run(["tenant", "join", email]) == 0
    capsys.readouterr()
    hostile = greeting_file(demo / "hostile.yaml", corpus_greeting(case), MD_MEMBERS)
    if run(["--lang", lang, "plan", hostile, "--format", "markdown"]) == 1:  # schema refuses
        failed = capsys.readouterr()
        problem = {"en": "problem", "ja": "問題が"}[lang]
        assert problem in failed.err and raw_controls(failed.err) == [], failed.err
        return
    plain = greeting_file(demo / "plain.yaml", "hello\nworld", PLAIN_MEMBERS)
    got = capsys.readouterr().out
    assert run(["--lang", lang, "plan", plain, "--format", "markdown"]) == 0
    expected = capsys.readouterr().out.replace("plain.yaml", "hostile.yaml")
    assert structure(got) == structure(expected), got
    assert not {"link_open", "image", "html_inline"} & set(structure(got)), got
    assert unpinged(got) == []
    # The whole greeting reads in a fenced block, exactly (controls escaped).
    fences = [t.content for t in tokens(got) if t.type == "fence"]
    assert fences == [printable(corpus_greeting(case)) + "\n"]
    codes = {t.content for t in tokens(got) if t.type == "code_inline"}
    assert set(MD_MEMBERS) <= codes


def test_drift_markdown_of_a_hostile_tenant_greeting_has_only_lwrs_own_markup(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = corpus_greeting("escape_markdown_greeting.yaml")
    assert run(["apply", greeting_file(demo / "h.yaml", message), "--auto-approve"]) == 0
    capsys.readouterr()
    plain = greeting_file(demo / "plain.yaml", "hello")
    assert run(["drift", plain, "--format", "markdown"]) in (0, 2)
    got = capsys.readouterr().out
    assert run(["apply", plain, "--auto-approve"]) == 0
    assert run(["apply", greeting_file(demo / "h.yaml", "hello\nworld"), "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["drift", plain, "--format", "markdown"]) in (0, 2)
    expected = capsys.readouterr().out
    assert structure(got) == structure(expected), got
    assert unpinged(got) == []


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_fleet_markdown_of_a_hostile_file_name_and_error_message(
    lang: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fleet(name: str, email: str) -> str:
        folder = tmp_path / name
        folder.mkdir()
        write(
            folder / f"{name}.yaml",
            "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
            f"  line:\n    members:\n      include: [{json.dumps(email)}]\n",
        )
        run(
            [
                "--lang",
                lang,
                "plan",
                str(folder),
                "--format",
                "markdown",
                "--tenant",
                f"local:{tmp_path}/{name}-{{tenant}}.db",
            ]
        )
        return capsys.readouterr().out

    got = fleet("@org team **x** <img src=x> |a| `b` #1", "**x** <img src=x> @org/team")
    expected = fleet("plain", "plain words here")
    assert structure(got) == structure(expected), got
    assert unpinged(got) == []
    html_blocks = "".join(t.content for t in tokens(got) if t.type == "html_block")
    assert "<img" not in html_blocks and html_blocks.count("<details>") == 1


def test_terminal_plan_show_drift_and_audit_escape_controls_and_bidi(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tenant member whose email carries ESC, a C1 CSI and a right-to-left override
    # (the desired file cannot name it: its schema rejects such an email).
    def line(**settings: object) -> str:
        return write(
            demo / "d.yaml",
            json.dumps(
                {"version": 1, "tenant": "example.co.jp", "external_messaging": {"line": settings}},
                ensure_ascii=False,
            ),
        )

    assert run(["apply", line(auto_grant_new_members=True), "--auto-approve"]) == 0
    hostile = "e\x1b[2j\x9b31m\u202eevil@example.co.jp"
    assert run(["tenant", "join", hostile]) == 0
    shown = "e\\x1b[2j\\x9b31m\\u202eevil@example.co.jp"
    capsys.readouterr()
    exact = {"policy": "exact", "include": ["alice@example.co.jp"]}
    message = "営業時間\u202e98:00\u202c \u2066x\u2069"
    desired = line(greeting={"enabled": True, "message": message}, members=exact)
    for command in (["plan", desired], ["drift", desired], ["show"]):
        run(command)
        out = capsys.readouterr().out
        assert shown in out, (command, out)
        assert raw_controls(out) == [], (command, out)
        if command[0] != "show":
            assert "\\u202e98:00\\u202c \\u2066x\\u2069" in out, out
    assert run(["apply", desired, "--auto-approve"]) == 0
    assert run(["audit"]) == 0
    out = capsys.readouterr().out
    assert f"remove_member {shown}" in out and raw_controls(out) == [], out


def test_json_output_escapes_controls_and_bidi_and_keeps_the_values(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format json` on a terminal is as safe as text, and parses to the exact values."""
    hostile = "e\x9b31m\u202eevil\u200d@example.co.jp"
    greeting = "営業時間\u202e98:00\u202c 😀"
    write(
        demo / "d.yaml",
        json.dumps(
            {
                "version": 1,
                "tenant": "example.co.jp",
                "external_messaging": {
                    "line": {
                        "auto_grant_new_members": True,
                        "greeting": {"enabled": True, "message": greeting},
                    }
                },
            },
            ensure_ascii=False,
        ),
    )
    assert run(["apply", str(demo / "d.yaml"), "--auto-approve"]) == 0
    assert run(["tenant", "join", hostile]) == 0
    exact = write(
        demo / "e.yaml",
        json.dumps(
            {
                "version": 1,
                "tenant": "example.co.jp",
                "external_messaging": {
                    "line": {"members": {"policy": "exact", "include": ["alice@example.co.jp"]}}
                },
            }
        ),
    )
    capsys.readouterr()
    for command in (["show"], ["plan", exact], ["drift", exact], ["audit"], ["lock", "list"]):
        run([*command, "--format", "json"])
        out = capsys.readouterr().out
        assert raw_controls(out) == [] and "\u200d" not in out, (command, out)
        document = json.loads(out)
        if command[0] == "show":
            line = document["channels"]["line"]
            assert hostile in line["members"] and line["greeting"]["message"] == greeting
        if command[0] == "plan":
            assert hostile in {c["target"] for c in document["changes"]}, out
    assert run(["apply", exact, "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["audit", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert raw_controls(out) == [] and hostile in {e["target"] for e in json.loads(out)}


def raw_controls(text: str) -> list[str]:
    return re.findall("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]", text)


def test_error_messages_quoting_bad_values_are_escaped_in_a_real_subprocess(tmp_path: Path) -> None:
    ansi = str(CORPUS / "escape_ansi_member.yaml")
    c1 = str(CORPUS / "escape_c1_csi_greeting.yaml")
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "LWR_TENANT": f"local:{tmp_path}/t.db"}
    runs = [
        ["validate", ansi, c1],
        ["plan", ansi],
        ["plan", c1, "--tenant", "bogus:\x1b]0;title\x07\u202eevil"],
        ["show", "--tenant", "local:\x9b2J/\u202e/t.db"],
        ["plan", c1, "--format", "\x1b[31m\u202ex"],
    ]
    subprocess.run([LWR, "tenant", "init", "--demo"], env=env, check=True, capture_output=True)
    for args in runs:
        proc = subprocess.run([LWR, *args], capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip(), args
        assert raw_controls(proc.stdout + proc.stderr) == [], (args, proc.stderr)
        assert "\\u202e" in proc.stderr or "\\x9b" in proc.stderr, (args, proc.stderr)


# --------------------------------------------------------------------------- invisible changes


NFC = "ガイド"
NFD = unicodedata.normalize("NFD", NFC)


@pytest.mark.parametrize(
    ("now", "wanted", "note"),
    [
        (NFC, NFD, "differs only in Unicode normalisation: NFC → NFD"),
        (NFD, NFC, "differs only in Unicode normalisation: NFD → NFC"),
        ("Office hours", "Office\u00a0hours", "U+0020 SPACE → U+00A0 NO-BREAK SPACE"),
        ("Office hours", "Office hours ", "(nothing) → U+0020 SPACE"),
        ("ガイド", "ガ\u200bイド", "(nothing) → U+200B ZERO WIDTH SPACE"),
    ],
)
def test_a_change_nobody_could_see_is_named_in_text_markdown_and_json_keeps_it(
    now: str, wanted: str, note: str, demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", greeting_file(demo / "now.yaml", now), "--auto-approve"]) == 0
    capsys.readouterr()
    file = greeting_file(demo / "wanted.yaml", wanted)
    assert run(["plan", file]) == 0
    assert note in capsys.readouterr().out
    assert run(["plan", file, "--format", "markdown"]) == 0
    assert note in text_of(capsys.readouterr().out).replace(WORD_JOINER, "")
    assert run(["plan", file, "--format", "json"]) == 0
    (change,) = json.loads(capsys.readouterr().out)["changes"]
    assert change["after"]["message"] == wanted  # the exact value, not a rendering
    assert run(["drift", greeting_file(demo / "wanted.yaml", wanted)]) in (0, 2)
    assert note in capsys.readouterr().out


def test_a_visible_change_gets_no_note(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", greeting_file(demo / "g.yaml", "ようこそ")]) == 0
    assert "differs only" not in capsys.readouterr().out


def test_a_long_greeting_changed_past_the_clipped_part_says_where(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "営業時間のご案内です。" * 10
    assert run(["apply", greeting_file(demo / "now.yaml", long + "x"), "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["plan", greeting_file(demo / "wanted.yaml", long + "y")]) == 0
    out = capsys.readouterr().out
    note = (
        "message differs after what is shown, at character 111: “業時間のご案内です。x” → "
        "“業時間のご案内です。y”"
    )
    assert note in out, out

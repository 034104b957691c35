"""Markdown building blocks: inert user text, collapsible blocks, and parts a pull-request
comment can hold; plus the collapsed member lists of big plans and drift reports, and the
policy findings both documents open with.

Split from render/markdown.py (the plan and drift documents), which re-exports the escaping
helpers. A member list is one `<details>` per channel and change kind, its counts in the
`<summary>` line and the names inside; every list of a document shares NAMES_BUDGET
characters, so a 10,000-change plan fits in two comments; the rest is counted ("and N more").
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from reconciler.actions import Change
from reconciler.i18n import ENGLISH, Messages
from reconciler.policy import Finding, PolicyReport
from reconciler.render.values import because_words
from reconciler.terminal import printable

#: GitHub refuses comments over 65,536 characters; parts stay under this.
PART_LIMIT = 65_000
#: Printed between parts on stdout (`--markdown-dir` writes one file per part instead).
PART_BREAK = "<!-- lwr:part-break -->"
_HEADER_ROOM = 200  # the part header, "(part 12 of 12)" included


#: After "@" and "#" in text: GitHub finds @mentions and #123 references in the rendered page
#: (outside code and links), after markdown escapes are gone, so only a character between them
#: and the name stops a ping or a cross-reference; U+2060 WORD JOINER is invisible and no name
#: character.
WORD_JOINER = "\u2060"
# What markdown, GFM or GitHub give a meaning to (CommonMark lets a backslash escape any ASCII
# punctuation): emphasis, code, links, HTML, tables, strikethrough, math, entities anywhere;
# "://" and a dot before a letter (GFM's http:// and www. autolinks, bare domains); and a block
# marker at the start (# heading, + - list, = setext, 1. or 1) ordered list); and outer blanks.
# Quotes, commas, parentheses after an escaped "[" and the like stay, so the text still reads.
_MARKUP = re.compile(
    r"[\\`*_{}\[\]<>|~@$&#]|:(?=//)|\.(?=[A-Za-z])|^[+=-]|^[0-9]+[.)]|^[ \t]+|[ \t]+$"
)
_PING = re.compile("[@#]")
_LINK_START = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)", re.IGNORECASE)
#: Text shown in a fenced block is cut here: one block must fit in a part.
FENCED_LIMIT = 2000


def _one_line(text: str) -> str:
    """Printable, on one line: a newline in inline text could start a heading or a list."""
    return printable(text).replace("\n", "⏎")  # a CR is already \\x0d


@lru_cache(maxsize=4096)  # side effects and warnings repeat once per change
def md_escape(text: str) -> str:
    """User text as inert inline markdown: no emphasis, link, image, autolink, HTML, table
    cell break, heading, list, mention or issue reference; it reads as the text itself.

    The punctuation that means something is backslash-escaped (GFM table cells honour `\\|`),
    "@" and "#" are followed by a word joiner (WORD_JOINER), which also stops email autolinks;
    outer blanks become character references: leading ones would indent (a code block) and a
    table cell would trim both, hiding a trailing space the plan is about.
    """
    return _MARKUP.sub(_neutral, _one_line(text))


def _neutral(match: re.Match[str]) -> str:
    found = match.group()
    if found in ("@", "#"):
        return f"\\{found}{WORD_JOINER}"
    if found[0] in " \t":
        return "".join(f"&#{ord(c)};" for c in found)
    if found[0].isdigit():  # "12." at the start: an ordered list
        return f"{found[:-1]}\\{found[-1]}"
    return "\\" + found


def md_code(text: str, *, table: bool = False) -> str:
    """Inline code, exact and inert (GitHub finds no mention or link in code); a backtick
    inside needs a longer fence (code spans have no escapes). `table`: the span sits in a
    table cell, where `|` must be written `\\|` even inside code."""
    text = _one_line(text)
    if table:
        text = text.replace("|", "\\|")
    if not text:
        return "“”"
    fence = "`" * (max(map(len, re.findall("`+", text))) + 1 if "`" in text else 1)
    # One space each side is stripped when both are there: pad when the text starts or
    # ends with a backtick, or would lose its own outer spaces.
    pad = text[0] == "`" or text[-1] == "`" or (text[0] == text[-1] == " " and text.strip())
    return f"{fence} {text} {fence}" if pad else f"{fence}{text}{fence}"


def md_html(text: str) -> str:
    """User text inside raw HTML (a <summary>): markdown is not parsed there, so HTML-escaped,
    with mentions, references and link starts broken by a word joiner."""
    escaped = html.escape(_one_line(text), quote=True)
    escaped = _LINK_START.sub(WORD_JOINER, escaped)
    return _PING.sub(lambda m: m.group() + WORD_JOINER, escaped)


def md_fenced(text: str, indent: str = "") -> str:
    """Multi-line user text (a greeting) as a fenced code block that nothing in it can close:
    the fence is longer than its longest backtick run. Control characters are escaped."""
    text = printable(text)
    if len(text) > FENCED_LIMIT:
        text = text[:FENCED_LIMIT] + f"\n… ({len(text) - FENCED_LIMIT:,} more characters)"
    runs = re.findall("`+", text)
    fence = "`" * max(3, max(map(len, runs)) + 1 if runs else 3)
    lines = [fence + "text", *text.split("\n"), fence]
    return "\n".join(f"{indent}{line}" if line else "" for line in lines)


@dataclass(frozen=True)
class Details:
    """A collapsible block; paginate() may split it, closing and reopening it across parts."""

    summary: str
    items: tuple[str, ...]


Block = str | Details


def paginate(
    title: str, blocks: Iterable[Block], limit: int = PART_LIMIT, t: Messages = ENGLISH
) -> list[str]:
    """Lay `blocks` out in parts of fewer than `limit` characters, each opening with `title`.

    A string block is never split. A Details block that does not fit is closed at the end
    of a part and reopened ("continued") in the next, so every part has balanced tags.
    """
    pager = _Pager(limit - len(title) - _HEADER_ROOM, t)
    for block in blocks:
        if isinstance(block, Details):
            pager.details(block)
        else:
            pager.add(block + "\n")
    parts = pager.finish()
    total = len(parts)
    return [
        f"{_part_title(title, i, total, t)}\n\n{body}".rstrip("\n") + "\n"
        for i, body in enumerate(parts, 1)
    ]


def _part_title(title: str, i: int, total: int, t: Messages) -> str:
    return title + t._(" (part {i} of {total})", i=i, total=total) if total > 1 else title


T = TypeVar("T")


class Parts(Generic[T]):
    """A markdown document of `T` (a plan, a drift report) in parts under `limit`
    characters: a title and its blocks, laid out by `paginate`, with the `policy` findings
    (policy_blocks), in the reader's language (`messages`)."""

    def __init__(
        self,
        *,
        policy: PolicyReport | None = None,
        limit: int = PART_LIMIT,
        messages: Messages = ENGLISH,
    ) -> None:
        self.policy = policy
        self.limit = limit
        self.t = messages

    def render(self, subject: T) -> str:
        """All parts, separated by PART_BREAK lines."""
        return f"\n{PART_BREAK}\n\n".join(self.render_parts(subject))

    def render_parts(self, subject: T) -> list[str]:
        """The comment(s) for `subject`, each under the part limit."""
        return paginate(self._title(subject), self._blocks(subject), self.limit, self.t)

    def _title(self, subject: T) -> str:
        raise NotImplementedError

    def _blocks(self, subject: T) -> list[Block]:
        raise NotImplementedError


class _Pager:
    """Fills parts up to a character budget."""

    def __init__(self, budget: int, t: Messages = ENGLISH) -> None:
        self.t = t
        self.budget = max(budget, 1000)
        self.parts: list[str] = []
        self.current: list[str] = []
        self.size = 0

    def _fits(self, n: int) -> bool:
        return self.size + n <= self.budget

    def _flush(self) -> None:
        if self.current:
            self.parts.append("".join(self.current))
        self.current, self.size = [], 0

    def add(self, chunk: str) -> None:
        chunk = self._clip(chunk, 0)
        if not self._fits(len(chunk)):
            self._flush()
        self.current.append(chunk)
        self.size += len(chunk)

    def details(self, block: Details) -> None:
        close = "\n</details>\n"
        opening = f"<details><summary>{block.summary}</summary>\n\n"
        is_open = False
        for item in block.items:
            chunk = self._clip(item + "\n", len(opening) + len(close))
            if not self._fits(len(chunk) + len(close) + (0 if is_open else len(opening))):
                if is_open:  # split here: close it in this part, reopen it in the next
                    self.current.append(close)
                    more = self.t._("{summary} (continued)", summary=block.summary)
                    opening = f"<details><summary>{more}</summary>\n\n"
                self._flush()
                is_open = False
            if not is_open:
                self.current.append(opening)
                self.size += len(opening)
                is_open = True
            self.current.append(chunk)
            self.size += len(chunk)
        if is_open:
            self.current.append(close)
            self.size += len(close)

    def _clip(self, chunk: str, overhead: int) -> str:
        """No single block may exceed a part; our blocks never do, but input is input."""
        room = self.budget - overhead
        return chunk if len(chunk) <= room else chunk[: room - 20] + self.t._(" … (clipped)") + "\n"

    def finish(self) -> list[str]:
        self._flush()
        return self.parts or [""]


#: Characters of names (list items) all collapsed member lists of one document share: two
#: comments of PART_LIMIT hold them with room for the summary, safety and settings sections.
NAMES_BUDGET = 90_000
#: Each list shows at least this many names, however many lists share the budget.
MIN_NAMES = 50


def capped(items: Sequence[str], budget: int, more: str, t: Messages = ENGLISH) -> tuple[str, ...]:
    """`items` while they fit in `budget` characters (at least MIN_NAMES of them), then one
    line counting the rest: `- … and 8,000 more` + `more`."""
    shown: list[str] = []
    used = 0
    for item in items:
        used += len(item) + 1
        if used > budget and len(shown) >= MIN_NAMES:
            break
        shown.append(item)
    if len(shown) < len(items):
        shown.append("- " + t._("… and {n:,} more", n=len(items) - len(shown)) + more)
    return tuple(shown)


def member_details(
    channel: str, groups: Sequence[Sequence[Change]], budget: int, t: Messages = ENGLISH
) -> list[Details]:
    """One collapsed block per kind of member change (add, remove) on `channel`: the count,
    destructive and manual ones in the summary line, the side effect they share once, then
    the names (with their own side effect where it differs), within `budget` characters;
    in `t`'s language."""
    share = budget // max(len(groups), 1)
    return [_kind_details(channel, changes, share, t) for changes in groups]


def _kind_details(channel: str, changes: Sequence[Change], budget: int, t: Messages) -> Details:
    spec = changes[0].spec
    destructive = sum(1 for c in changes if c.destructive)
    manual = sum(1 for c in changes if c.execution == "manual")
    flags = [
        t._("{n:,} destructive", n=destructive) if destructive else "",
        t._("{n:,} manual", n=manual) if manual else "",
    ]
    notes = t._(", ").join(f for f in flags if f)
    title = html.escape(t._(spec.title))
    count = t.n_(
        "{channel} · {title}: {n:,} member",
        "{channel} · {title}: {n:,} members",
        len(changes),
        channel=html.escape(channel),
        title=title,
    )
    summary = t._("{count} ({notes})", count=count, notes=notes) if notes else count
    effects = Counter(_effects(c, t) for c in changes)
    common = effects.most_common(1)[0][0]
    each = t._("Side effect of each, unless noted: {effect}", effect=md_escape(common))
    head = (each + "\n",) if common else ()
    items = [
        f"- {md_code(c.target or '')}{_why(c, t)}"
        + (f" — {md_escape(own)}" if (own := _effects(c, t)) != common else "")
        for c in changes
    ]
    more = t._(" (every name: `lwr show-plan PLAN.json --no-compact`, or `--format json`)")
    return Details(summary, head + capped(items, budget, more, t))


def _why(change: Change, t: Messages) -> str:
    why = because_words(change, "", t)
    return t._(" _({why})_", why=md_escape(why)) if why else ""


def _effects(change: Change, t: Messages) -> str:
    return t._("; ").join(e.say(t) for e in change.side_effects)


def policy_blocks(policy: PolicyReport | None, t: Messages = ENGLISH) -> list[Block]:
    """Failed deny rules as a CAUTION, failed warn rules as a WARNING, with their places."""
    if policy is None:
        return []
    blocks: list[Block] = []
    for kind, findings in (("CAUTION", policy.denied), ("WARNING", policy.warnings)):
        if findings:
            blocks.append("\n".join([f"> [!{kind}]", *_finding_lines(findings, t)]) + "\n")
    if policy.notes:
        notes = [t._("_policy note: {note}_", note=md_escape(n)) + "  " for n in policy.notes]
        blocks.append("\n".join(notes) + "\n")
    return blocks


def _finding_lines(findings: Sequence[Finding], t: Messages) -> list[str]:
    deny = findings[0].rule.severity == "deny"
    lines = []
    for f in findings:
        rule, text = md_code(f.rule.id), md_escape(f.rule.message_in(t))
        if deny:
            head = t._("**Policy denied by {rule}**: {text}", rule=rule, text=text)
        else:
            head = t._("**Policy warning from {rule}**: {text}", rule=rule, text=text)
        lines.append(f"> {head}")
        lines += [f"> - {md_escape(place)}" for place in f.places]
        if f.more:
            lines.append("> - " + t._("… and {n} more", n=f.more))
    return lines

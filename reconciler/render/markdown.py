"""Pull-request comment output for plans and drift reports, split into parts a comment can hold.

Summary table first, destructive changes called out next, then one section per channel.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from reconciler.actions import Action, Change
from reconciler.gate import Blocker
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.policy import Finding, PolicyReport
from reconciler.render.values import (
    describe,
    hidden_differences,
    setting_difference,
    show_setting,
    text_changes,
)
from reconciler.terminal import printable
from reconciler.words import plural

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport, MemberDrift

#: GitHub refuses comments over 65,536 characters; parts stay under this.
PART_LIMIT = 65_000
#: Printed between parts on stdout (`--markdown-dir` writes one file per part instead).
PART_BREAK = "<!-- lwr:part-break -->"
#: Member changes shown inline up to this many per channel; more go in a <details> block.
INLINE_MEMBERS = 10
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


def paginate(title: str, blocks: Iterable[Block], limit: int = PART_LIMIT) -> list[str]:
    """Lay `blocks` out in parts of fewer than `limit` characters, each opening with `title`.

    A string block is never split. A Details block that does not fit is closed at the end
    of a part and reopened ("continued") in the next, so every part has balanced tags.
    """
    pager = _Pager(limit - len(title) - _HEADER_ROOM)
    for block in blocks:
        if isinstance(block, Details):
            pager.details(block)
        else:
            pager.add(block + "\n")
    parts = pager.finish()
    total = len(parts)
    return [
        f"{title}{f' (part {i} of {total})' if total > 1 else ''}\n\n{body}".rstrip("\n") + "\n"
        for i, body in enumerate(parts, 1)
    ]


class _Pager:
    """Fills parts up to a character budget."""

    def __init__(self, budget: int) -> None:
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
                    opening = f"<details><summary>{block.summary} (continued)</summary>\n\n"
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
        return chunk if len(chunk) <= room else chunk[: room - 20] + " … (clipped)\n"

    def finish(self) -> list[str]:
        self._flush()
        return self.parts or [""]


def policy_blocks(policy: PolicyReport | None) -> list[Block]:
    """Failed deny rules as a CAUTION, failed warn rules as a WARNING, with their places."""
    if policy is None:
        return []
    blocks: list[Block] = []
    for kind, findings in (("CAUTION", policy.denied), ("WARNING", policy.warnings)):
        if findings:
            blocks.append("\n".join([f"> [!{kind}]", *_finding_lines(findings)]) + "\n")
    if policy.notes:
        blocks.append("\n".join(f"_policy note: {md_escape(n)}_  " for n in policy.notes) + "\n")
    return blocks


def _finding_lines(findings: Sequence[Finding]) -> list[str]:
    verb = "denied by" if findings[0].rule.severity == "deny" else "warning from"
    lines = []
    for f in findings:
        lines.append(f"> **Policy {verb} {md_code(f.rule.id)}**: {md_escape(f.rule.message)}")
        lines += [f"> - {md_escape(place)}" for place in f.places]
        if f.more:
            lines.append(f"> - … and {f.more} more")
    return lines


class PlanMarkdown:
    """`--format markdown` for a plan."""

    def __init__(self, *, policy: PolicyReport | None = None, limit: int = PART_LIMIT) -> None:
        self.policy = policy
        self.limit = limit

    def render(self, plan: Plan) -> str:
        """All parts, separated by PART_BREAK lines."""
        return f"\n{PART_BREAK}\n\n".join(self.render_parts(plan))

    def render_parts(self, plan: Plan) -> list[str]:
        """The comment(s) for `plan`, each under the part limit."""
        title = f"### lwr plan for {md_code(plan.tenant)}"
        return paginate(title, self._blocks(plan), self.limit)

    def _blocks(self, plan: Plan) -> list[Block]:
        origin = f"{md_code(plan.source)} against " if plan.source else ""
        blocks: list[Block] = [
            f"{origin}{md_code(plan.tenant_uri)} · "
            f"{plural(len(plan.changes), 'change')} · "
            f"plan {md_code(plan.digest[:12])}\n"
        ]
        if not plan.changes:
            return [
                *blocks,
                *policy_blocks(self.policy),
                "No changes: the tenant matches the desired state.\n",
            ]
        blocks.append(_summary_table(plan))
        blocks += _destructive_block(plan)
        blocks += policy_blocks(self.policy)
        blocks += [f"> [!WARNING]\n> {md_escape(w)}\n" for w in plan.warnings]
        for channel in ChannelName:
            changes = [c for c in plan.changes if c.channel is channel]
            if changes:
                blocks += _channel_section(channel, changes)
        return blocks


def _summary_table(plan: Plan) -> str:
    rows = [
        "| channel | add | change | remove | destructive | manual |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for channel in ChannelName:
        mine = [c for c in plan.changes if c.channel is channel]
        if mine:
            rows.append(f"| {channel.value} | " + " | ".join(str(n) for n in _counts(mine)) + " |")
    s = plan.summary()
    rows.append(
        f"| **total** | **{s['add']}** | **{s['change']}** | **{s['remove']}** | "
        f"**{s['destructive']}** | **{s['manual']}** |"
    )
    return "\n".join(rows) + "\n"


def _counts(changes: Sequence[Change]) -> tuple[int, ...]:
    buckets = [c.spec.bucket for c in changes]
    return (
        buckets.count("add"),
        buckets.count("change"),
        buckets.count("remove"),
        sum(1 for c in changes if c.destructive),
        sum(1 for c in changes if c.execution == "manual"),
    )


def _destructive_block(plan: Plan) -> list[Block]:
    """The safety gate's verdict first (reconciler.gate): refused, or the flag apply needs,
    each blocker with its numbers and the file change that would do instead."""
    gate = plan.gate
    if not gate.blockers:
        return []
    where = md_code(gate.where())
    if gate.verdict == "refused":
        channels = ", ".join(md_code(b.channel.value) for b in gate.protected)
        head = (
            f"> **apply will refuse this plan**: {channels} is in `safety.protect_channels`, "
            "which `--allow-destructive` cannot override"
        )
        shown = gate.protected
        foot = [
            ">",  # ends the list: the next line is a paragraph of its own
            "> A protected channel is changed this way only after removing it from "
            f"`protect_channels` in the `safety:` block of {where}, in a reviewed change.",
        ]
        if gate.unprotected:
            foot += [">", "> Besides, apply needs `--allow-destructive` for:"]
            foot += [_blocker_line(plan, b) for b in gate.unprotected]
    else:
        count = sum(b.changes for b in gate.blockers)
        head = f"> **{plural(count, 'destructive change')}**: apply needs `--allow-destructive`"
        shown, foot = gate.blockers, []
    lines = ["> [!CAUTION]", head]
    for b in shown:
        lines.append(_blocker_line(plan, b))
        if b.action is Action.DISABLE_CHANNEL:
            lines += [f">   - {md_escape(e.text)}" for e in _change(plan, b.first).side_effects]
        if b.file_change and not b.protected:
            lines.append(
                f">   - or, without the flag: set {md_code(b.file_words())} in the "
                f"`safety:` block of {where}"
            )
    return ["\n".join([*lines, *foot]) + "\n"]


def _blocker_line(plan: Plan, b: Blocker) -> str:
    if b.action is Action.DISABLE_CHANNEL:
        return f"> - **{b.channel.value}**: {md_escape(describe(_change(plan, b.first)))}"
    why = b.threshold.describe() if b.threshold else "over the safety threshold"
    return (
        f"> - **{b.channel.value}**: remove {plural(b.changes, 'member')}, "
        f"over the safety threshold: {md_escape(why)}"
    )


def _change(plan: Plan, change_id: str) -> Change:
    return next(c for c in plan.changes if c.id == change_id)


def _bullet(change: Change) -> str:
    flag = " **(destructive)**" if change.destructive else ""
    manual = " _(manual step)_" if change.execution == "manual" else ""
    what = (
        f"{md_escape(change.spec.title)} {md_code(change.target or '')}"
        if change.spec.member_level
        else md_escape(describe(change))
    )
    lines = [f"- {md_code(change.spec.marker)} {what}{flag}{manual}"]
    lines += [f"  - {md_escape(e.text)}" for e in change.side_effects]
    lines += [f"  - :warning: {md_escape(note)}" for note in hidden_differences(change)]
    for name, old, new in text_changes(change):
        if old:
            lines += ["", f"  The {name} now:", "", md_fenced(old, "  ")]
        lines += ["", f"  The {name} after apply:", "", md_fenced(new, "  ")]
    return "\n".join(lines)


def _channel_section(channel: ChannelName, changes: Sequence[Change]) -> list[Block]:
    head = f"#### {channel.value} — {md_escape(channel.label)}\n"
    members = [c for c in changes if c.spec.member_level]
    if len(members) <= INLINE_MEMBERS:  # few: everything in execution order
        return [head, *(_bullet(c) for c in changes), ""]
    added = sum(1 for c in members if c.spec.bucket == "add")
    summary = (
        f"{channel.value}: {plural(len(members), 'member change')} "
        f"({added} to add, {len(members) - added} to remove)"
    )
    return [
        head,
        *(_bullet(c) for c in changes if not c.spec.member_level),
        "",
        Details(summary, tuple(_bullet(c) for c in members)),
        "",
    ]


class DriftMarkdown:
    """`lwr drift --format markdown`."""

    def __init__(self, *, policy: PolicyReport | None = None, limit: int = PART_LIMIT) -> None:
        self.policy = policy
        self.limit = limit

    def render(self, report: DriftReport) -> str:
        """All parts, separated by PART_BREAK lines."""
        return f"\n{PART_BREAK}\n\n".join(self.render_parts(report))

    def render_parts(self, report: DriftReport) -> list[str]:
        """The comment(s) for `report`, each under the part limit."""
        title = f"### lwr drift for {md_code(report.tenant)}"
        return paginate(title, self._blocks(report), self.limit)

    def _blocks(self, report: DriftReport) -> list[Block]:
        blocks: list[Block] = [
            f"{md_code(report.source)} against {md_code(report.tenant_uri)} · "
            f"checked {report.checked_at}\n"
        ]
        if report.in_sync:
            return [
                *blocks,
                *policy_blocks(self.policy),
                "In sync: the tenant matches the desired state.\n",
            ]
        s = report.summary()
        blocks.append(
            "| drifted settings | members missing | members not in the file | "
            "changes to fix |\n|--:|--:|--:|--:|\n"
            f"| {s['settings']} | {s['members_missing']} | "
            f"{s['members_unexpected']} | {s['changes']} |\n"
        )
        blocks += policy_blocks(self.policy)
        blocks += [f"> [!WARNING]\n> {md_escape(w)}\n" for w in report.warnings]
        for channel in report.channels():
            blocks += _drift_section(report, channel)
        return blocks


def _drift_section(report: DriftReport, channel: ChannelName) -> list[Block]:
    blocks: list[Block] = [f"#### {channel.value} — {md_escape(channel.label)}\n"]
    settings = [d for d in report.settings if d.channel is channel]
    if settings:
        rows = ["| setting | desired | current |", "|---|---|---|"]
        rows += [
            f"| {d.setting} | {md_escape(show_setting(d.setting, d.desired))} | "
            f"{md_escape(show_setting(d.setting, d.current))} |"
            for d in settings
        ]
        notes = [
            f"- :warning: {md_escape(d.setting)} {md_escape(note)}"
            for d in settings
            if (note := setting_difference(d.desired, d.current))
        ]
        blocks.append(
            "\n".join(rows) + "\n" + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
        )
    for members in (m for m in report.members if m.channel is channel):
        blocks += _member_blocks(members)
    return blocks


def _member_blocks(m: MemberDrift) -> list[Block]:
    blocks: list[Block] = [
        f"Members (policy {m.policy}): {m.desired_count} in the file, "
        f"{m.current_count} on the tenant's list.\n"
    ]
    for who, title in (
        (m.missing, "in the file, not on the list"),
        (m.unexpected, "on the list, not in the file"),
    ):
        if not who:
            continue
        items = tuple(f"- {md_code(email)}" for email in who)
        label = f"{plural(len(who), 'member')} {title}"
        if len(who) <= INLINE_MEMBERS:
            blocks.append(f"{label}:\n\n" + "\n".join(items) + "\n")
        else:
            blocks += [Details(label, items), ""]
    return blocks

"""Pull-request comment output for plans and drift reports, split into parts a comment can hold.

Summary table first, destructive changes called out next, then one section per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.actions import Action, Change
from reconciler.gate import Blocker
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.policy import Finding, PolicyReport
from reconciler.render.mdparts import (
    NAMES_BUDGET,
    PART_BREAK,
    PART_LIMIT,
    WORD_JOINER,
    Block,
    Details,
    Parts,
    capped,
    md_code,
    md_escape,
    md_fenced,
    md_html,
    member_details,
    paginate,
)
from reconciler.render.values import (
    describe,
    hidden_differences,
    setting_difference,
    show_setting,
    text_changes,
)
from reconciler.words import plural

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport, MemberDrift

__all__ = [
    "PART_BREAK",
    "PART_LIMIT",
    "WORD_JOINER",
    "Details",
    "DriftMarkdown",
    "PlanMarkdown",
    "md_code",
    "md_escape",
    "md_fenced",
    "md_html",
    "paginate",
]

#: Member changes shown inline up to this many per channel; more are collapsed (mdparts).
INLINE_MEMBERS = 10


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


class PlanMarkdown(Parts[Plan]):
    """`--format markdown` for a plan; `compact` False lists every member change in full
    (more parts) instead of the capped name lists (mdparts.member_details)."""

    def __init__(
        self,
        *,
        policy: PolicyReport | None = None,
        limit: int = PART_LIMIT,
        compact: bool | None = None,
    ) -> None:
        self.policy = policy
        self.limit = limit
        self.compact = compact is not False

    def _title(self, plan: Plan) -> str:
        return f"### lwr plan for {md_code(plan.tenant)}"

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
        sections = {ch: [c for c in plan.changes if c.channel is ch] for ch in ChannelName}
        kinds = {ch: len(_member_kinds(changes)) for ch, changes in sections.items()}
        for channel, changes in sections.items():  # every kind gets an even share of names
            budget = NAMES_BUDGET * kinds[channel] // max(sum(kinds.values()), 1)
            if changes:
                blocks += _channel_section(channel, changes, budget if self.compact else None)
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


def _member_kinds(changes: Sequence[Change]) -> list[list[Change]]:
    """The member changes of `changes` by kind (remove, add), in execution order."""
    kinds: dict[object, list[Change]] = {}
    for c in changes:
        if c.spec.member_level:
            kinds.setdefault(c.action, []).append(c)
    return list(kinds.values())


def _channel_section(
    channel: ChannelName, changes: Sequence[Change], budget: int | None
) -> list[Block]:
    """Settings changes as bullets; member changes inline when few, else collapsed: capped
    name lists per kind (`budget` characters for the channel), or with `budget` None every
    change in full."""
    head = f"#### {channel.value} — {md_escape(channel.label)}\n"
    members = [c for c in changes if c.spec.member_level]
    if len(members) <= INLINE_MEMBERS:  # few: everything in execution order
        return [head, *(_bullet(c) for c in changes), ""]
    if budget is not None:
        settings_bullets = [_bullet(c) for c in changes if not c.spec.member_level]
        collapsed = member_details(channel.value, _member_kinds(members), budget)
        return [head, *settings_bullets, "", *(b for d in collapsed for b in (d, ""))]
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


class DriftMarkdown(Parts["DriftReport"]):
    """`lwr drift --format markdown`."""

    def __init__(self, *, policy: PolicyReport | None = None, limit: int = PART_LIMIT) -> None:
        self.policy = policy
        self.limit = limit

    def _title(self, report: DriftReport) -> str:
        return f"### lwr drift for {md_code(report.tenant)}"

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
        blocks += _member_blocks(members, NAMES_BUDGET // max(2 * len(report.members), 1))
    return blocks


def _member_blocks(m: MemberDrift, budget: int) -> list[Block]:
    """The members missing and unexpected, collapsed past INLINE_MEMBERS; each list within
    `budget` characters of names (the rest counted)."""
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
        more = " (every name: `lwr drift FILE --format json`)"
        items = capped([f"- {md_code(email)}" for email in who], budget, more)
        label = f"{plural(len(who), 'member')} {title}"
        if len(who) <= INLINE_MEMBERS:
            blocks.append(f"{label}:\n\n" + "\n".join(items) + "\n")
        else:
            blocks += [Details(label, items), ""]
    return blocks

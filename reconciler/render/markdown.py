"""Pull-request comment output for plans, split into parts a comment can hold (drift reports:
reconciler.render.drift_markdown).

Summary table first, destructive changes called out next, then one section per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.actions import Action, Change
from reconciler.gate import Blocker
from reconciler.i18n import ENGLISH, Messages, say
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.policy import PolicyReport
from reconciler.render.mdparts import (
    NAMES_BUDGET,
    PART_BREAK,
    PART_LIMIT,
    WORD_JOINER,
    Block,
    Details,
    Parts,
    md_code,
    md_escape,
    md_fenced,
    md_html,
    member_details,
    paginate,
    policy_blocks,
)
from reconciler.render.values import (
    because_words,
    describe,
    hidden_differences,
    say_change,
    text_changes,
)

__all__ = [
    "PART_BREAK",
    "PART_LIMIT",
    "WORD_JOINER",
    "Details",
    "PlanMarkdown",
    "md_code",
    "md_escape",
    "md_fenced",
    "md_html",
    "paginate",
]

#: Member changes shown inline up to this many per channel; more are collapsed (mdparts).
INLINE_MEMBERS = 10


class PlanMarkdown(Parts[Plan]):
    """`--format markdown` for a plan; `compact` False lists every member change in full
    (more parts) instead of the capped name lists (mdparts.member_details); `messages` is
    the reader's language (reconciler.i18n)."""

    def __init__(
        self,
        *,
        policy: PolicyReport | None = None,
        limit: int = PART_LIMIT,
        compact: bool | None = None,
        messages: Messages = ENGLISH,
    ) -> None:
        super().__init__(policy=policy, limit=limit, messages=messages)
        self.compact = compact is not False

    def _title(self, plan: Plan) -> str:
        return "### " + self.t._("lwr plan for {tenant}", tenant=md_code(plan.tenant))

    def _blocks(self, plan: Plan) -> list[Block]:
        t = self.t
        fields = {"uri": md_code(plan.tenant_uri), "digest": md_code(plan.digest[:12])}
        n = len(plan.changes)
        if plan.source:
            head = t.n_(
                "{source} against {uri} · {n} change · plan {digest}",
                "{source} against {uri} · {n} changes · plan {digest}",
                n,
                source=md_code(plan.source),
                **fields,
            )
        else:
            head = t.n_(
                "{uri} · {n} change · plan {digest}",
                "{uri} · {n} changes · plan {digest}",
                n,
                **fields,
            )
        blocks: list[Block] = [head + "\n"]
        if not plan.changes:
            return [
                *blocks,
                *policy_blocks(self.policy, t),
                t._("No changes: the tenant matches the desired state.") + "\n",
            ]
        blocks.append(_summary_table(plan, t))
        blocks += _destructive_block(plan, t)
        blocks += policy_blocks(self.policy, t)
        blocks += [f"> [!WARNING]\n> {md_escape(say(w, t))}\n" for w in plan.warnings]
        sections = {ch: [c for c in plan.changes if c.channel is ch] for ch in ChannelName}
        kinds = {ch: len(_member_kinds(changes)) for ch, changes in sections.items()}
        for channel, changes in sections.items():  # every kind gets an even share of names
            budget = NAMES_BUDGET * kinds[channel] // max(sum(kinds.values()), 1)
            if changes:
                blocks += _channel_section(channel, changes, budget if self.compact else None, t)
        return blocks


def _summary_table(plan: Plan, t: Messages) -> str:
    rows = [
        t._("| channel | add | change | remove | destructive | manual |"),
        "|---|--:|--:|--:|--:|--:|",
    ]
    for channel in ChannelName:
        mine = [c for c in plan.changes if c.channel is channel]
        if mine:
            rows.append(f"| {channel.value} | " + " | ".join(str(n) for n in _counts(mine)) + " |")
    s, total = plan.summary(), t._("total")
    rows.append(
        f"| **{total}** | **{s['add']}** | **{s['change']}** | **{s['remove']}** | "
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


def _destructive_block(plan: Plan, t: Messages) -> list[Block]:
    """The safety gate's verdict first (reconciler.gate): refused, or the flag apply needs,
    each blocker with its numbers and the file change that would do instead."""
    gate = plan.gate
    if not gate.blockers:
        return []
    where = md_code(gate.where(t))
    if gate.verdict == "refused":
        channels = t._(", ").join(md_code(b.channel.value) for b in gate.protected)
        head = "> " + t._(
            "**apply will refuse this plan**: {channels} is in `safety.protect_channels`, "
            "which `--allow-destructive` cannot override",
            channels=channels,
        )
        shown = gate.protected
        foot = [
            ">",  # ends the list: the next line is a paragraph of its own
            "> "
            + t._(
                "A protected channel is changed this way only after removing it from "
                "`protect_channels` in the `safety:` block of {where}, in a reviewed change.",
                where=where,
            ),
        ]
        if gate.unprotected:
            foot += [">", "> " + t._("Besides, apply needs `--allow-destructive` for:")]
            foot += [_blocker_line(plan, b, t) for b in gate.unprotected]
    else:
        count = sum(b.changes for b in gate.blockers)
        head = "> " + t.n_(
            "**{n} destructive change**: apply needs `--allow-destructive`",
            "**{n} destructive changes**: apply needs `--allow-destructive`",
            count,
        )
        shown, foot = gate.blockers, []
    lines = ["> [!CAUTION]", head]
    for b in shown:
        lines.append(_blocker_line(plan, b, t))
        if b.action is Action.DISABLE_CHANNEL:
            lines += [f">   - {md_escape(e.say(t))}" for e in _change(plan, b.first).side_effects]
        if b.file_change and not b.protected:
            lines.append(
                ">   - "
                + t._(
                    "or, without the flag: set {setting} in the `safety:` block of {where}",
                    setting=md_code(b.file_words()),
                    where=where,
                )
            )
    return ["\n".join([*lines, *foot]) + "\n"]


def _blocker_line(plan: Plan, b: Blocker, t: Messages) -> str:
    if b.action is Action.DISABLE_CHANNEL:
        what = _describe(_change(plan, b.first), t)
        return f"> - **{b.channel.value}**: {md_escape(what)}"
    why = b.threshold.describe(t) if b.threshold else t._("over the safety threshold")
    return "> - " + t.n_(
        "**{channel}**: remove {n} member, over the safety threshold: {why}",
        "**{channel}**: remove {n} members, over the safety threshold: {why}",
        b.changes,
        channel=b.channel.value,
        why=md_escape(why),
    )


def _describe(change: Change, t: Messages) -> str:
    """A change's line in `t`'s language (English: values.describe, as it always read)."""
    return describe(change) if t.lang == "en" else say_change(t, change)


def _change(plan: Plan, change_id: str) -> Change:
    return next(c for c in plan.changes if c.id == change_id)


def _bullet(change: Change, t: Messages) -> str:
    flag = t._(" **(destructive)**") if change.destructive else ""
    manual = t._(" _(manual step)_") if change.execution == "manual" else ""
    what = (
        f"{md_escape(t._(change.spec.title))} {md_code(change.target or '')}"
        if change.spec.member_level
        else md_escape(_describe(change, t))
    )
    why = because_words(change, "", t)
    what += t._(" _({why})_", why=md_escape(why)) if why else ""
    lines = [f"- {md_code(change.spec.marker)} {what}{flag}{manual}"]
    lines += [f"  - {md_escape(e.say(t))}" for e in change.side_effects]
    lines += [f"  - :warning: {md_escape(note)}" for note in hidden_differences(change, t)]
    for name, old, new in text_changes(change):
        name = t._(name)
        if old:
            lines += ["", "  " + t._("The {name} now:", name=name), "", md_fenced(old, "  ")]
        lines += ["", "  " + t._("The {name} after apply:", name=name), "", md_fenced(new, "  ")]
    return "\n".join(lines)


def _member_kinds(changes: Sequence[Change]) -> list[list[Change]]:
    """The member changes of `changes` by kind (remove, add), in execution order."""
    kinds: dict[object, list[Change]] = {}
    for c in changes:
        if c.spec.member_level:
            kinds.setdefault(c.action, []).append(c)
    return list(kinds.values())


def _channel_section(
    channel: ChannelName, changes: Sequence[Change], budget: int | None, t: Messages
) -> list[Block]:
    """Settings changes as bullets; member changes inline when few, else collapsed: capped
    name lists per kind (`budget` characters for the channel), or with `budget` None every
    change in full."""
    head = f"#### {channel.value} — {md_escape(t._(channel.label))}\n"
    members = [c for c in changes if c.spec.member_level]
    if len(members) <= INLINE_MEMBERS:  # few: everything in execution order
        return [head, *(_bullet(c, t) for c in changes), ""]
    if budget is not None:
        settings_bullets = [_bullet(c, t) for c in changes if not c.spec.member_level]
        collapsed = member_details(channel.value, _member_kinds(members), budget, t)
        return [head, *settings_bullets, "", *(b for d in collapsed for b in (d, ""))]
    added = sum(1 for c in members if c.spec.bucket == "add")
    summary = t.n_(
        "{channel}: {n} member change ({added} to add, {removed} to remove)",
        "{channel}: {n} member changes ({added} to add, {removed} to remove)",
        len(members),
        channel=channel.value,
        added=added,
        removed=len(members) - added,
    )
    return [
        head,
        *(_bullet(c, t) for c in changes if not c.spec.member_level),
        "",
        Details(summary, tuple(_bullet(c, t) for c in members)),
        "",
    ]

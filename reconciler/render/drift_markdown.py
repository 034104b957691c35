"""`lwr drift --format markdown`: the drift report as pull-request comments, in the reader's
language (reconciler.i18n); setting keys, member names and values are never translated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.i18n import N_, say
from reconciler.model import ChannelName
from reconciler.render.markdown import INLINE_MEMBERS
from reconciler.render.mdparts import (
    NAMES_BUDGET,
    Block,
    Details,
    Parts,
    capped,
    md_code,
    md_escape,
    policy_blocks,
)
from reconciler.render.values import churn_words, setting_difference, show_setting

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport, MemberDrift
    from reconciler.selection import Churn

__all__ = ["DriftMarkdown"]


class DriftMarkdown(Parts["DriftReport"]):
    """`lwr drift --format markdown`; `messages` is the reader's language."""

    def _title(self, report: DriftReport) -> str:
        return self.t._("### lwr drift for {tenant}", tenant=md_code(report.tenant))

    def _blocks(self, report: DriftReport) -> list[Block]:
        t = self.t
        blocks: list[Block] = [
            t._(
                "{source} against {uri} · checked {at}",
                source=md_code(report.source),
                uri=md_code(report.tenant_uri),
                at=report.checked_at,
            )
            + "\n"
        ]
        if report.in_sync:
            return [
                *blocks,
                *policy_blocks(self.policy, t),
                t._("In sync: the tenant matches the desired state.") + "\n",
            ]
        s = report.summary()
        head = t._(
            "| drifted settings | members missing | members not in the file | changes to fix |"
        )
        blocks.append(
            f"{head}\n|--:|--:|--:|--:|\n"
            f"| {s['settings']} | {s['members_missing']} | "
            f"{s['members_unexpected']} | {s['changes']} |\n"
        )
        blocks += policy_blocks(self.policy, t)
        blocks += [f"> [!WARNING]\n> {md_escape(say(w, t))}\n" for w in report.warnings]
        for channel in report.channels():
            blocks += self._section(report, channel)
        return blocks

    def _section(self, report: DriftReport, channel: ChannelName) -> list[Block]:
        t = self.t
        blocks: list[Block] = [f"#### {channel.value} — {md_escape(t._(channel.label))}\n"]
        settings = [d for d in report.settings if d.channel is channel]
        if settings:
            rows = [t._("| setting | desired | current |"), "|---|---|---|"]
            rows += [
                f"| {d.setting} | {md_escape(show_setting(d.setting, d.desired, t))} | "
                f"{md_escape(show_setting(d.setting, d.current, t))} |"
                for d in settings
            ]
            notes = [
                f"- :warning: {md_escape(d.setting)} {md_escape(note)}"
                for d in settings
                if (note := setting_difference(d.desired, d.current, t))
            ]
            blocks.append(
                "\n".join(rows) + "\n" + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
            )
        for members in (m for m in report.members if m.channel is channel):
            blocks += self._members(members, NAMES_BUDGET // max(2 * len(report.members), 1))
        churned = [c for ch, c in report.selection or () if ch is channel]
        if churned:
            blocks.append("".join(self._churn(c) for c in churned))
        return blocks

    def _churn(self, churn: Churn) -> str:
        """One item per selector: the counts, then who joined and who left (within budget)."""
        t = self.t
        names = [f"- {md_code('+' + e)}" for e in churn.joined]
        names += [f"- {md_code('-' + e)}" for e in churn.left]
        more = t._(" (every name: `lwr drift FILE --format json`)")
        shown = capped(names, NAMES_BUDGET // 4, more, t)
        return f"- {md_escape(churn_words(churn, t))}\n" + "".join(f"  {n}\n" for n in shown)

    def _members(self, m: MemberDrift, budget: int) -> list[Block]:
        """The members missing and unexpected, collapsed past INLINE_MEMBERS; each list within
        `budget` characters of names (the rest counted)."""
        t = self.t
        blocks: list[Block] = [
            t._(
                "Members (policy {policy}): {desired} in the file, {current} on the tenant's list.",
                policy=m.policy,
                desired=m.desired_count,
                current=m.current_count,
            )
            + "\n"
        ]
        for who, title in (
            (m.missing, N_("{n} in the file, not on the list")),
            (m.unexpected, N_("{n} on the list, not in the file")),
        ):
            if not who:
                continue
            more = t._(" (every name: `lwr drift FILE --format json`)")
            items = capped([f"- {md_code(email)}" for email in who], budget, more)
            label = t._(title, n=t.n_("{n} member", "{n} members", len(who)))
            if len(who) <= INLINE_MEMBERS:
                blocks.append(f"{label}:\n\n" + "\n".join(items) + "\n")
            else:
                blocks += [Details(label, items), ""]
        return blocks

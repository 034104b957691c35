"""Human output: plans in execution order under their phase with side effects; drift reports.

Plain strings with optional ANSI colour: rich's markup engine costs seconds on a
100k-change plan, and this output is read top to bottom anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.actions import Change
from reconciler.i18n import ENGLISH, N_, Messages, say
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.policy import PolicyReport
from reconciler.render import compact
from reconciler.render.ansi import style
from reconciler.render.values import (
    because_words,
    churn_words,
    describe,
    hidden_differences,
    pad,
    say_change,
    setting_difference,
    show_setting,
)
from reconciler.terminal import printable

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport, MemberDrift
    from reconciler.selection import Churn

MARKER_COLORS = {"+": "green", "-": "red", "~": "yellow"}


class _Styled:
    """Optional ANSI colour: on a terminal only (the CLI decides, NO_COLOR included)."""

    def __init__(
        self,
        *,
        color: bool = False,
        policy: PolicyReport | None = None,
        messages: Messages = ENGLISH,
    ) -> None:
        self.color = color
        self.policy = policy
        self.t = messages

    def _style(self, text: str, fg: str | None = None, bold: bool | None = None) -> str:
        """`text` made printable, then coloured: our own escapes are the only ones left."""
        text = printable(text)
        return style(text, fg=fg, bold=bold) if self.color else text

    def _warning_lines(self, warnings: Sequence[str]) -> list[str]:
        """The plan's or report's warnings in yellow, after a blank line (none: nothing)."""
        if not warnings:
            return []
        t = self.t
        said = (t._("Warning: {warning}", warning=say(w, t)) for w in warnings)
        return ["", *(self._style(text, fg="yellow") for text in said)]

    def _policy_lines(self) -> list[str]:
        """Failed rules, deny in red and warn in yellow, each with its places."""
        if self.policy is None or not (self.policy.findings or self.policy.notes):
            return []
        t = self.t
        lines = [""]
        for finding in self.policy.findings:
            head, *rest = finding.lines(t)
            fg = "red" if finding.rule.severity == "deny" else "yellow"
            lines.append(self._style(t._("Policy {finding}", finding=head), fg=fg, bold=True))
            lines += map(printable, rest)
        lines += [printable(t._("Policy note: {note}", note=say(n, t))) for n in self.policy.notes]
        return lines


class PlanText(_Styled):
    """The default terminal/pipe rendering; `compact` (None: past a size) counts member
    changes per kind instead of listing each (reconciler.render.compact); `messages` is
    the reader's language (reconciler.i18n)."""

    def __init__(
        self,
        *,
        color: bool = False,
        policy: PolicyReport | None = None,
        compact: bool | None = None,
        messages: Messages = ENGLISH,
    ) -> None:
        super().__init__(color=color, policy=policy, messages=messages)
        self.compact = compact

    def _group(self, group: compact.MemberGroup, source: str = "") -> list[str]:
        marker = group.changes[0].spec.marker
        t = self.t

        def flags(destructive: int, manual: int) -> str:
            red = t._("  ({n:,} destructive)", n=destructive) if destructive else ""
            return self._style(red, fg="red", bold=True) + (
                t._("  [{n:,} manual steps]", n=manual) if manual else ""
            )

        styled = self._style(marker, fg=MARKER_COLORS[marker], bold=True)
        return compact.group_lines(group, styled, flags, t, source)

    def render(self, plan: Plan) -> str:
        """The plan, ordered, with a closing summary line."""
        t = self.t
        if plan.source:
            head = t._(
                "Tenant {tenant} ({uri}), desired state {source}",
                tenant=plan.tenant,
                uri=plan.tenant_uri,
                source=plan.source,
            )
        else:
            head = t._("Tenant {tenant} ({uri})", tenant=plan.tenant, uri=plan.tenant_uri)
        lines = [self._style(head, bold=True), ""]
        if not plan.changes:
            lines.append(t._("No changes. The tenant matches the desired state."))
        short = compact.is_compact(plan, self.compact)
        groups = compact.member_groups(plan.changes) if short else {}
        phase = None
        for change in plan.changes:
            if change.phase is not phase:
                phase = change.phase
                title = t._("Phase {n} · {title}", n=int(phase), title=t._(phase.title))
                lines.append(self._style(title, bold=True))
            if change.spec.member_level and short:  # the group, where its first change is
                group = groups.pop((change.channel, change.action), None)
                lines += self._group(group, plan.source) if group else []
                continue
            lines += self._change(change, plan.source)
        lines += self._warning_lines(plan.warnings)
        lines += self._policy_lines()
        if plan.changes:
            lines += ["", self._style(self._summary(plan), bold=True)]
            lines += [t._(compact.NOTE)] if short else []
        lines += self._gate_lines(plan)
        return "\n".join(lines) + "\n"

    def _change(self, change: Change, source: str = "") -> list[str]:
        """One change line with why (`source`: the plan's file), then its side effects and
        what its values hide."""
        t = self.t
        marker = change.spec.marker
        flag = (
            self._style(t._("  (destructive)"), fg="red", bold=True) if change.destructive else ""
        )
        manual = t._("  [manual step]") if change.execution == "manual" else ""
        what = describe(change) if t.lang == "en" else say_change(t, change)
        why = because_words(change, source, t)
        said = t._(" ({why})", why=why) if why else ""
        lines = [
            f"  {self._style(marker, fg=MARKER_COLORS[marker], bold=True)} "
            f"{pad(change.channel.value, 9)}  {what}{said}{flag}{manual}"
        ]
        lines.extend(printable(f"        · {effect.say(t)}") for effect in change.side_effects)
        lines.extend(
            self._style(f"        ! {note}", fg="yellow") for note in hidden_differences(change, t)
        )
        return lines

    def _summary(self, plan: Plan) -> str:
        s = plan.summary()
        return self.t.n_(
            "Plan: {n} change — {add} to add, {change} to change, {remove} to remove; "
            "{destructive} destructive",
            "Plan: {n} changes — {add} to add, {change} to change, {remove} to remove; "
            "{destructive} destructive",
            s["total"],
            add=s["add"],
            change=s["change"],
            remove=s["remove"],
            destructive=s["destructive"],
        )

    def _gate_lines(self, plan: Plan) -> list[str]:
        """What apply will need or refuse, as the safety gate says (reconciler.gate)."""
        advice = plan.gate.advice(self.t)
        if not advice:
            return []
        head, *rest = advice
        fg = "red" if plan.gate.verdict == "refused" else "yellow"
        return [
            "",
            self._style(head[0].upper() + head[1:], fg=fg, bold=True),
            *map(printable, rest),
        ]


class DriftText(_Styled):
    """`lwr drift` on a terminal or a pipe: each drifted setting with both values, in the
    reader's language (`messages`); keys, names and values are never translated."""

    def __init__(
        self,
        *,
        color: bool = False,
        policy: PolicyReport | None = None,
        shown: int = 20,
        messages: Messages = ENGLISH,
    ) -> None:
        super().__init__(color=color, policy=policy, messages=messages)
        self.shown = shown  # members listed per list before "… and N more"

    def render(self, report: DriftReport) -> str:
        """In sync in one line; otherwise channel by channel, then a summary line."""
        t = self.t
        head = t._(
            "Tenant {tenant} ({uri}), desired state {source}",
            tenant=report.tenant,
            uri=report.tenant_uri,
            source=report.source,
        )
        lines = [self._style(head, bold=True), ""]
        if report.in_sync:
            text = t._(
                "In sync: {tenant} matches {source}.", tenant=report.tenant, source=report.source
            )
            lines.append(printable(text))
        for channel in report.channels():
            lines += self._channel(report, channel)
        lines += self._warning_lines(report.warnings)
        lines += self._policy_lines()
        if report.settings or report.members:
            lines += ["", self._style(self._summary(report), bold=True)]
        if report.contradicted:
            lines.append(
                t.n_(
                    "LINE WORKS contradicts lwr's attested state for {n} member (the warnings "
                    "above)",
                    "LINE WORKS contradicts lwr's attested state for {n} members (the warnings "
                    "above)",
                    len(report.contradicted),
                )
            )
        return "\n".join(lines) + "\n"

    def _summary(self, report: DriftReport) -> str:
        s, t = report.summary(), self.t
        return t._(
            "Drift: {settings}, {missing} missing, {unexpected} not in the file; "
            "`lwr plan` fixes it with {changes}",
            settings=t.n_("{n} setting", "{n} settings", s["settings"]),
            missing=t.n_("{n} member", "{n} members", s["members_missing"]),
            unexpected=s["members_unexpected"],
            changes=t.n_("{n} change", "{n} changes", s["changes"]),
        )

    def _channel(self, report: DriftReport, channel: ChannelName) -> list[str]:
        t = self.t
        lines = [self._style(f"{channel.value} — {t._(channel.label)}", bold=True)]
        for d in (d for d in report.settings if d.channel is channel):
            values = t._(
                "desired {desired}, current {current}",
                desired=show_setting(d.setting, d.desired, t),
                current=show_setting(d.setting, d.current, t),
            )
            lines.append(f"  {self._style('~', fg='yellow', bold=True)} {d.setting:<24} {values}")
            note = setting_difference(d.desired, d.current, t)
            if note:
                lines.append(self._style(f"    ! {d.setting} {note}", fg="yellow"))
        for m in (m for m in report.members if m.channel is channel):
            lines += self._members(m)
        for churned, churn in report.selection or ():
            if churned is channel:
                names = self._churned(churn)
                lines.append(f"  {self._style('~', fg='yellow', bold=True)} {names}")
        return lines

    def _churned(self, churn: Churn) -> str:
        """The counts, then who (up to `shown` of each)."""
        t, parts = self.t, [churn_words(churn, self.t)]
        for marker, who in (("+", churn.joined), ("-", churn.left)):
            if who:
                names = t._(", ").join(who[: self.shown])
                if len(who) > self.shown:
                    names += t._(", … and {n:,} more", n=len(who) - self.shown)
                parts.append(f"{marker} {names}")
        return printable(t._("; ").join(parts))

    def _members(self, m: MemberDrift) -> list[str]:
        t = self.t
        lines = [
            t._(
                "  members (policy {policy}): {desired} in the file, {current} on the list",
                policy=m.policy,
                desired=m.desired_count,
                current=m.current_count,
            )
        ]
        for marker, fg, who, what in (
            ("+", "green", m.missing, N_("{n} in the file, not on the list: {names}")),
            ("-", "red", m.unexpected, N_("{n} on the list, not in the file: {names}")),
        ):
            if not who:
                continue
            names = printable(t._(", ").join(who[: self.shown]))
            if len(who) > self.shown:
                names += t._(", … and {n:,} more", n=len(who) - self.shown)
            styled = self._style(marker, fg=fg, bold=True)
            lines.append(f"    {styled} " + t._(what, n=len(who), names=names))
        return lines

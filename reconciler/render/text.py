"""Human output: plans in execution order under their phase with side effects; drift reports.

Plain strings with optional ANSI colour: rich's markup engine costs seconds on a
100k-change plan, and this output is read top to bottom anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.actions import Change
from reconciler.i18n import ENGLISH, Messages, say
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.policy import PolicyReport
from reconciler.render import compact
from reconciler.render.ansi import style
from reconciler.render.values import (
    describe,
    hidden_differences,
    pad,
    say_change,
    setting_difference,
    show_setting,
)
from reconciler.terminal import printable
from reconciler.words import plural

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport, MemberDrift

MARKER_COLORS = {"+": "green", "-": "red", "~": "yellow"}


class _Styled:
    """Optional ANSI colour: on a terminal only (the CLI decides, NO_COLOR included)."""

    def __init__(self, *, color: bool = False, policy: PolicyReport | None = None) -> None:
        self.color = color
        self.policy = policy

    def _style(self, text: str, fg: str | None = None, bold: bool | None = None) -> str:
        """`text` made printable, then coloured: our own escapes are the only ones left."""
        text = printable(text)
        return style(text, fg=fg, bold=bold) if self.color else text

    def _policy_lines(self) -> list[str]:
        """Failed rules, deny in red and warn in yellow, each with its places."""
        if self.policy is None or not (self.policy.findings or self.policy.notes):
            return []
        lines = [""]
        for finding in self.policy.findings:
            head, *rest = finding.lines()
            fg = "red" if finding.rule.severity == "deny" else "yellow"
            lines.append(self._style(f"Policy {head}", fg=fg, bold=True))
            lines += map(printable, rest)
        lines += [printable(f"Policy note: {note}") for note in self.policy.notes]
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
        super().__init__(color=color, policy=policy)
        self.compact = compact
        self.t = messages

    def _group(self, group: compact.MemberGroup) -> list[str]:
        marker = group.changes[0].spec.marker
        t = self.t

        def flags(destructive: int, manual: int) -> str:
            red = t._("  ({n:,} destructive)", n=destructive) if destructive else ""
            return self._style(red, fg="red", bold=True) + (
                t._("  [{n:,} manual steps]", n=manual) if manual else ""
            )

        styled = self._style(marker, fg=MARKER_COLORS[marker], bold=True)
        return compact.group_lines(group, styled, flags, t)

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
                lines += self._group(group) if group else []
                continue
            lines += self._change(change)
        if plan.warnings:
            lines.append("")
            lines.extend(
                self._style(t._("Warning: {warning}", warning=say(w, t)), fg="yellow")
                for w in plan.warnings
            )
        lines += self._policy_lines()
        if plan.changes:
            lines += ["", self._style(self._summary(plan), bold=True)]
            lines += [t._(compact.NOTE)] if short else []
        lines += self._gate_lines(plan)
        return "\n".join(lines) + "\n"

    def _change(self, change: Change) -> list[str]:
        """One change line, then its side effects and what its values hide."""
        t = self.t
        marker = change.spec.marker
        flag = (
            self._style(t._("  (destructive)"), fg="red", bold=True) if change.destructive else ""
        )
        manual = t._("  [manual step]") if change.execution == "manual" else ""
        what = describe(change) if t.lang == "en" else say_change(t, change)
        lines = [
            f"  {self._style(marker, fg=MARKER_COLORS[marker], bold=True)} "
            f"{pad(change.channel.value, 9)}  {what}{flag}{manual}"
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
    """`lwr drift` on a terminal or a pipe: each drifted setting with both values."""

    def __init__(
        self, *, color: bool = False, policy: PolicyReport | None = None, shown: int = 20
    ) -> None:
        super().__init__(color=color, policy=policy)
        self.shown = shown  # members listed per list before "… and N more"

    def render(self, report: DriftReport) -> str:
        """In sync in one line; otherwise channel by channel, then a summary line."""
        head = f"Tenant {report.tenant} ({report.tenant_uri}), desired state {report.source}"
        lines = [self._style(head, bold=True), ""]
        if report.in_sync:
            lines.append(printable(f"In sync: {report.tenant} matches {report.source}."))
        for channel in report.channels():
            lines += self._channel(report, channel)
        if report.warnings:
            lines.append("")
            lines.extend(self._style(f"Warning: {w}", fg="yellow") for w in report.warnings)
        lines += self._policy_lines()
        if report.settings or report.members:
            s = report.summary()
            lines += [
                "",
                self._style(
                    f"Drift: {plural(s['settings'], 'setting')}, "
                    f"{plural(s['members_missing'], 'member')} missing, "
                    f"{s['members_unexpected']} not in the file; `lwr plan` fixes it with "
                    f"{plural(s['changes'], 'change')}",
                    bold=True,
                ),
            ]
        if report.contradicted:
            lines.append(
                f"LINE WORKS contradicts lwr's attested state for "
                f"{plural(len(report.contradicted), 'member')} (the warnings above)"
            )
        return "\n".join(lines) + "\n"

    def _channel(self, report: DriftReport, channel: ChannelName) -> list[str]:
        lines = [self._style(f"{channel.value} — {channel.label}", bold=True)]
        for d in (d for d in report.settings if d.channel is channel):
            lines.append(
                f"  {self._style('~', fg='yellow', bold=True)} {d.setting:<24} "
                f"desired {show_setting(d.setting, d.desired)}, "
                f"current {show_setting(d.setting, d.current)}"
            )
            note = setting_difference(d.desired, d.current)
            if note:
                lines.append(self._style(f"    ! {d.setting} {note}", fg="yellow"))
        for m in (m for m in report.members if m.channel is channel):
            lines += self._members(m)
        return lines

    def _members(self, m: MemberDrift) -> list[str]:
        lines = [
            f"  members (policy {m.policy}): {m.desired_count} in the file, "
            f"{m.current_count} on the list"
        ]
        for marker, fg, who, what in (
            ("+", "green", m.missing, "in the file, not on the list"),
            ("-", "red", m.unexpected, "on the list, not in the file"),
        ):
            if not who:
                continue
            lines.append(
                f"    {self._style(marker, fg=fg, bold=True)} {len(who)} {what}: "
                + printable(", ".join(who[: self.shown]))
                + (f", … and {len(who) - self.shown} more" if len(who) > self.shown else "")
            )
        return lines

"""Human plan output: changes in execution order under their phase, side effects beneath.

Plain strings with optional ANSI colour: rich's markup engine costs seconds on a
100k-change plan, and this output is read top to bottom anyway.
"""

from __future__ import annotations

import click

from reconciler.actions import Phase
from reconciler.plan import Plan
from reconciler.render.values import describe

PHASE_TITLES = {
    Phase.ENABLE: "enable channels",
    Phase.TIGHTEN: "tighten (restrictions on, auto-grant off, list mode)",
    Phase.REMOVE: "remove members",
    Phase.ADD: "add members",
    Phase.GREETING: "greeting",
    Phase.LOOSEN: "loosen (restrictions off, auto-grant on)",
    Phase.DISABLE: "disable channels",
}
MARKER_COLORS = {"+": "green", "-": "red", "~": "yellow"}


class PlanText:
    """The default terminal/pipe rendering."""

    def __init__(self, *, color: bool = False) -> None:
        self.color = color

    def _style(self, text: str, fg: str | None = None, bold: bool | None = None) -> str:
        return click.style(text, fg=fg, bold=bold) if self.color else text

    def render(self, plan: Plan) -> str:
        """The plan, ordered, with a closing summary line."""
        head = f"Tenant {plan.tenant} ({plan.tenant_uri})"
        if plan.source:
            head += f", desired state {plan.source}"
        lines = [self._style(head, bold=True), ""]
        if not plan.changes:
            lines.append("No changes. The tenant matches the desired state.")
        phase = None
        for change in plan.changes:
            if change.phase is not phase:
                phase = change.phase
                lines.append(self._style(f"Phase {int(phase)} · {PHASE_TITLES[phase]}",
                                         bold=True))
            marker = change.spec.marker
            flag = self._style("  (destructive)", fg="red", bold=True) \
                if change.destructive else ""
            manual = "  [manual step]" if change.execution == "manual" else ""
            lines.append(f"  {self._style(marker, fg=MARKER_COLORS[marker], bold=True)} "
                         f"{change.channel.value:<9}  {describe(change)}{flag}{manual}")
            lines.extend(f"        · {effect.text}" for effect in change.side_effects)
        if plan.warnings:
            lines.append("")
            lines.extend(self._style(f"Warning: {w}", fg="yellow") for w in plan.warnings)
        s = plan.summary()
        if plan.changes:
            lines += ["", self._style(
                f"Plan: {s['total']} change{'s' if s['total'] != 1 else ''} — {s['add']} to add, "
                f"{s['change']} to change, {s['remove']} to remove; "
                f"{s['destructive']} destructive", bold=True)]
        return "\n".join(lines) + "\n"

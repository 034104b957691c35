"""Pull-request comment output: a summary table, destructive changes first, effects as bullets."""

from __future__ import annotations

import html

from reconciler.plan import Plan
from reconciler.render.values import describe


def _md(text: str) -> str:
    """Escape what GitHub markdown would interpret inside a table cell or bullet."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "\\`")


class PlanMarkdown:
    """`--format markdown`."""

    def render(self, plan: Plan) -> str:
        """A comment a reviewer can read without scrolling through member lists first."""
        s = plan.summary()
        out = [f"### lwr plan for `{_md(plan.tenant)}`", ""]
        if not plan.changes:
            return "\n".join([*out, "No changes: the tenant matches the desired state.", ""])
        out += ["| add | change | remove | destructive | manual |", "|---|---|---|---|---|",
                f"| {s['add']} | {s['change']} | {s['remove']} | {s['destructive']} "
                f"| {s['manual']} |", ""]
        destructive = plan.destructive
        if destructive:
            out += ["> [!CAUTION]", f"> {len(destructive)} destructive change(s):"]
            out += [f"> - **{_md(c.channel.value)}**: {_md(describe(c))}" for c in destructive]
            out.append("")
        for w in plan.warnings:
            out += ["> [!WARNING]", f"> {_md(w)}", ""]
        out += ["<details><summary>All changes, in order</summary>", ""]
        for c in plan.changes:
            out.append(f"- `{c.spec.marker}` **{_md(c.channel.value)}** {_md(describe(c))}")
            out += [f"  - {_md(e.text)}" for e in c.side_effects]
        out += ["", "</details>", ""]
        return "\n".join(out)

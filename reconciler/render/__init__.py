"""Plan renderers: one small class per output format, each with one method.

The CLI picks one by name; none of them prints.
"""

from __future__ import annotations

from typing import Protocol

from reconciler.plan import Plan


class Renderer(Protocol):
    """Turns a plan into text for one audience."""

    def render(self, plan: Plan) -> str:
        """The whole output for `plan`."""
        ...


def renderer_for(fmt: str, *, color: bool = False) -> Renderer:
    """The renderer for `--format` (text, json, markdown)."""
    from reconciler.render.json import PlanJson
    from reconciler.render.markdown import PlanMarkdown
    from reconciler.render.text import PlanText

    if fmt == "json":
        return PlanJson()
    if fmt == "markdown":
        return PlanMarkdown()
    return PlanText(color=color)

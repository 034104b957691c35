"""Renderers for plans and drift reports: one small class per output format, one method each.

The CLI picks one by name; none of them prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from reconciler.drift import DriftReport
    from reconciler.i18n import Messages
    from reconciler.plan import Plan
    from reconciler.policy import PolicyReport


class Renderer(Protocol):
    """Turns a plan into text for one audience."""

    def render(self, plan: Plan) -> str:
        """The whole output for `plan`."""
        ...


class DriftRenderer(Protocol):
    """Turns a drift report into text for one audience."""

    def render(self, report: DriftReport) -> str:
        """The whole output for `report`."""
        ...


def renderer_for(
    fmt: str,
    *,
    color: bool = False,
    policy: PolicyReport | None = None,
    compact: bool | None = None,
    messages: Messages | None = None,
) -> Renderer:
    """The plan renderer for `--format` (text, json, markdown); `policy` findings included
    in text and markdown (the JSON plan is the saved-plan contract and stays as it is);
    `compact` None: text compact past a size, markdown always (reconciler.render.compact)."""
    from reconciler.i18n import ENGLISH

    # Only the renderer asked for is imported: a text plan loads no markdown.
    if fmt == "json":
        from reconciler.render.json import PlanJson

        return PlanJson()
    if fmt == "markdown":
        from reconciler.render.markdown import PlanMarkdown

        return PlanMarkdown(policy=policy, compact=compact, messages=messages or ENGLISH)
    from reconciler.render.text import PlanText

    return PlanText(color=color, policy=policy, compact=compact, messages=messages or ENGLISH)


def drift_renderer_for(
    fmt: str,
    *,
    color: bool = False,
    policy: PolicyReport | None = None,
    messages: Messages | None = None,
) -> DriftRenderer:
    """The drift renderer for `--format` (text, json, markdown); `messages` the reader's
    language of the text (JSON is the same in every language)."""
    from reconciler.i18n import ENGLISH
    from reconciler.render.drift_markdown import DriftMarkdown
    from reconciler.render.json import DriftJson
    from reconciler.render.text import DriftText

    if fmt == "json":
        return DriftJson(policy=policy)
    if fmt == "markdown":
        return DriftMarkdown(policy=policy, messages=messages or ENGLISH)
    return DriftText(color=color, policy=policy, messages=messages or ENGLISH)

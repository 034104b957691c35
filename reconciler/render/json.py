"""Machine output: the saved-plan document and the drift report, UTF-8 (Japanese unescaped).

Plans follow schemas/plan.schema.json, drift reports schemas/drift.schema.json.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler.terminal import json_safe

if TYPE_CHECKING:  # `dump` is for every JSON command: it must not import the planner
    from reconciler.drift import DriftReport
    from reconciler.plan import Plan
    from reconciler.policy import PolicyReport


def dump(document: Any) -> str:
    """Pretty JSON; Japanese text stays readable (ensure_ascii=False), while controls and
    invisible characters are JSON escapes, safe on a terminal (`terminal.json_safe`)."""
    return json_safe(json.dumps(document, ensure_ascii=False, indent=2)) + "\n"


class PlanJson:
    """`--format json` and `--out`: exactly the saved-plan document (policy goes to stderr)."""

    def render(self, plan: Plan) -> str:
        """The plan document."""
        return dump(plan.to_json())


class DriftJson:
    """`lwr drift --format json`, with the policy findings when policies were evaluated."""

    def __init__(self, *, policy: PolicyReport | None = None) -> None:
        self.policy = policy

    def render(self, report: DriftReport) -> str:
        """The drift report document."""
        document = report.to_json()
        if self.policy is not None:
            document["policy"] = self.policy.to_json()
        return dump(document)

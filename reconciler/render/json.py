"""Machine output: the saved-plan document and the drift report, UTF-8 unescaped.

Plans follow schemas/plan.schema.json, drift reports schemas/drift.schema.json.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler.plan import Plan
from reconciler.policy import PolicyReport

if TYPE_CHECKING:  # only `lwr drift` imports the drift module
    from reconciler.drift import DriftReport


def dump(document: Any) -> str:
    """Pretty JSON; Japanese text stays readable (ensure_ascii=False)."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


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

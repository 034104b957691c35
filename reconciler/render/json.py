"""Machine plan output: the saved-plan document of schemas/plan.schema.json, UTF-8 unescaped."""

from __future__ import annotations

import json

from reconciler.plan import Plan


class PlanJson:
    """`--format json` and `--out`."""

    def render(self, plan: Plan) -> str:
        """Pretty JSON; Japanese text stays readable (ensure_ascii=False)."""
        return json.dumps(plan.to_json(), ensure_ascii=False, indent=2) + "\n"

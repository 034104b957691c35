"""Policy rules (docs/contract.md#policies): load `policies/*.yaml`, check files, evaluate rules.

A rule is a JSON Schema its target (the desired file as written, or the plan JSON) must satisfy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from reconciler import yamlsafe
from reconciler.errors import InputError, PolicyDenied, Problem
from reconciler.i18n import ENGLISH, Messages, Said, Told
from reconciler.model import DesiredState
from reconciler.plan import Plan

Severity = Literal["deny", "warn"]
Target = Literal["desired", "plan"]

POLICY_SCHEMA = "policy.schema.json"
MAX_PLACES = 10  # per finding: a rule failing on 100k changes needs examples, not a listing
MAX_REASON = 160


@dataclass(frozen=True)
class PolicyRule:
    """One rule of a policy file."""

    id: str
    severity: Severity
    target: Target
    message: str  # English (or the one text written): what JSON and the audit trail carry
    rule: Mapping[str, Any] | bool
    source: str  # FILE:LINE where the rule is written
    description: str = ""
    #: The message per language, as written (`message: {en: …, ja: …}`); empty for one text.
    messages: tuple[tuple[str, str], ...] = ()

    def message_in(self, t: Messages) -> str:
        """The message in `t`'s language when the rule has it, else `message`."""
        return dict(self.messages).get(t.lang, self.message)


@dataclass(frozen=True)
class Finding:
    """A rule its target does not satisfy, and where."""

    rule: PolicyRule
    places: tuple[str, ...]
    more: int = 0  # further places not listed

    def lines(self, t: Messages = ENGLISH) -> list[str]:
        """The finding as indented lines: rule, message, places, where the rule lives; the
        message in `t`'s language when the rule has one in it."""
        rule = self.rule
        out = [f"[{rule.severity}] {rule.id}: {rule.message_in(t)}"]
        out += [t._("    at {place}", place=place) for place in self.places]
        if self.more:
            out.append(t._("    … and {n:,} more", n=self.more))
        out.append(t._("    rule: {source}", source=rule.source))
        return out

    def to_json(self) -> dict[str, Any]:
        """Machine form (drift report, `--format json` consumers)."""
        return {
            "id": self.rule.id,
            "severity": self.rule.severity,
            "target": self.rule.target,
            "message": self.rule.message,
            "places": list(self.places),
            "more": self.more,
            "rule_source": self.rule.source,
        }


@dataclass(frozen=True)
class PolicyReport:
    """The outcome of evaluating a set of rules."""

    findings: tuple[Finding, ...] = ()
    evaluated: int = 0
    notes: tuple[str, ...] = ()  # rules that could not be evaluated, and why

    @property
    def denied(self) -> tuple[Finding, ...]:
        """Failed `deny` rules: these refuse the operation."""
        return tuple(f for f in self.findings if f.rule.severity == "deny")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Failed `warn` rules: shown, exit code unaffected."""
        return tuple(f for f in self.findings if f.rule.severity == "warn")

    def raise_if_denied(self) -> None:
        """Refuse (exit 3) listing every failed deny rule with its places."""
        denied = self.denied
        if not denied:
            return

        def write(t: Messages) -> str:
            lines = [
                t.n_(
                    "refused: {n} policy rule denied this:",
                    "refused: {n} policy rules denied this:",
                    len(denied),
                )
            ]
            lines += ["  - " + "\n    ".join(finding.lines(t)) for finding in denied]
            lines.append(t._("Fix the file (or the rule, in a reviewed change) and run again."))
            return "\n".join(lines)

        raise PolicyDenied(Told(write))

    def to_json(self) -> dict[str, Any]:
        """Machine form."""
        return {
            "evaluated": self.evaluated,
            "denied": len(self.denied),
            "warned": len(self.warnings),
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
        }


# --- loading ----------------------------------------------------------------------------------


def evaluate(
    rules: Sequence[PolicyRule], *, desired: DesiredState | None, plan: Plan | None
) -> PolicyReport:
    """Check each rule against its target; a target that is not at hand is noted, not passed.

    `desired` must carry its `document` (states read by `load_desired` do).
    """
    findings: list[Finding] = []
    notes: list[str] = []
    evaluated = 0
    plan_docs = _PlanDocuments(plan) if plan is not None else None
    for rule in rules:
        if rule.target == "desired":
            if desired is None or desired.document is None:
                notes.append(
                    Said.of(
                        "{id}: not evaluated, the desired-state file is not at hand", id=rule.id
                    )
                )
                continue
            finding = _check(rule, desired.document, _DesiredPlaces(desired))
        else:
            if plan is None or plan_docs is None:
                notes.append(Said.of("{id}: not evaluated, there is no plan", id=rule.id))
                continue
            finding = _check(rule, plan_docs.for_rule(rule), _PlanPlaces(plan))
        evaluated += 1
        if finding is not None:
            findings.append(finding)
    return PolicyReport(tuple(findings), evaluated, tuple(notes))


class _PlanDocuments:
    """The plan document for a rule, built once; without its change list and digests
    (plan_digest of the whole plan, desired_digest of the desired document) when the rule
    cannot see them: most of a 100k-change plan's cost.

    Exact, not a heuristic: with only local $refs, a rule reaches the `changes` value (or
    a digest) only through a schema text that names it, or by keywords that apply to
    every or unnamed keys (additionalProperties, patternProperties, unevaluatedProperties)
    or compare whole values (const, enum). A rule with none of those words sees the same
    document either way: the `changes` and digest keys stay, so `required` and key
    counts do not change.
    """

    _SEES_CHANGES = (
        "changes",
        "plan_digest",
        "desired_digest",
        "additionalProperties",
        "patternProperties",
        "unevaluatedProperties",
        "const",
        "enum",
    )

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._full: dict[str, Any] | None = None
        self._light: dict[str, Any] | None = None

    def for_rule(self, rule: PolicyRule) -> dict[str, Any]:
        text = json.dumps(rule.rule)
        if any(word in text for word in self._SEES_CHANGES):
            if self._full is None:
                self._full = self.plan.to_json()
            return self._full
        if self._light is None:
            self._light = self.plan.to_json(changes=False)
        return self._light


class _DesiredPlaces:
    """Names a failing place in the desired file as FILE:LINE:COL: path."""

    def __init__(self, desired: DesiredState) -> None:
        self.desired = desired

    def __call__(self, path: yamlsafe.Path) -> str:
        line, column = self.desired.locate(path) if self.desired.locate else (0, 0)
        where = f"{self.desired.source}:{line}:{column}" if line else self.desired.source
        return f"{where}: {yamlsafe.format_path(path) or '<document>'}"


class _PlanPlaces:
    """Names a failing place in the plan JSON, with the change's id when it is in one."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, path: yamlsafe.Path) -> str:
        where = f"plan: {yamlsafe.format_path(path) or '<document>'}"
        if (
            len(path) >= 2
            and path[0] == "changes"
            and isinstance(path[1], int)
            and 0 <= path[1] < len(self.plan.changes)
        ):
            where += f" ({self.plan.changes[path[1]].id})"
        return where


def _check(rule: PolicyRule, target: Any, place: _DesiredPlaces | _PlanPlaces) -> Finding | None:
    validator = Draft202012Validator(rule.rule)
    places: list[str] = []
    total = 0
    try:
        for error in validator.iter_errors(target):
            total += 1
            if len(places) < MAX_PLACES:
                places.append(f"{place(tuple(error.absolute_path))} ({clip(error.message)})")
    except Unresolvable as e:
        file, _, line = rule.source.rpartition(":")
        raise InputError(
            [
                Problem(
                    file,
                    int(line),
                    0,
                    "rule",
                    Said.of(
                        "policy rule {id} has a $ref that cannot be resolved: {why}",
                        id=repr(rule.id),
                        why=clip(str(e)),
                    ),
                    Said.of("use local references only (#/$defs/...)"),
                )
            ]
        ) from e
    if not total:
        return None
    return Finding(rule, tuple(places), total - len(places))


def clip(text: str) -> str:
    """`text` on one line, at most MAX_REASON characters (jsonschema's words can be long)."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= MAX_REASON else one_line[: MAX_REASON - 1] + "…"

"""Policy rules (docs/contract.md#policies): load `policies/*.yaml`, check files, evaluate rules.

A rule is a JSON Schema its target (the desired file as written, or the plan JSON) must satisfy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from reconciler import yamlsafe
from reconciler.desired import explain
from reconciler.errors import InputError, PolicyDenied, Problem
from reconciler.model import DesiredState
from reconciler.plan import Plan
from reconciler.resources import data_dir, load_schema

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
    message: str
    rule: Mapping[str, Any] | bool
    source: str  # FILE:LINE where the rule is written
    description: str = ""


@dataclass(frozen=True)
class Finding:
    """A rule its target does not satisfy, and where."""

    rule: PolicyRule
    places: tuple[str, ...]
    more: int = 0  # further places not listed

    def lines(self) -> list[str]:
        """The finding as indented lines: rule, message, places, where the rule lives."""
        out = [f"[{self.rule.severity}] {self.rule.id}: {self.rule.message}"]
        out += [f"    at {place}" for place in self.places]
        if self.more:
            out.append(f"    … and {self.more} more")
        out.append(f"    rule: {self.rule.source}")
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
        count = len(denied)
        lines = [f"refused: {count} policy rule{'s' if count != 1 else ''} denied this:"]
        for finding in denied:
            lines.append("  - " + "\n    ".join(finding.lines()))
        lines.append("Fix the file (or the rule, in a reviewed change) and run again.")
        raise PolicyDenied("\n".join(lines))

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


def default_policy_dir() -> Path:
    """The shipped `policies/` folder."""
    return data_dir("policies")


def load_policies(
    dirs: Sequence[str | os.PathLike[str]] = (), *, defaults: bool = True
) -> tuple[PolicyRule, ...]:
    """The shipped rules (unless `defaults` is False) and every `*.yaml` rule in `dirs`.

    A rule in `dirs` with the id of a shipped rule replaces it; two rules with one id in
    `dirs` are an error. Every problem of every file is reported at once (InputError).
    """
    shipped = _load_dir(default_policy_dir()) if defaults else []
    own: list[PolicyRule] = []
    problems: list[Problem] = []
    for folder in dirs:
        try:
            own += _load_dir(Path(folder))
        except InputError as e:
            problems += e.problems
    problems += _duplicates(own)
    if problems:
        raise InputError(problems)
    replaced = {rule.id for rule in own}
    return tuple([r for r in shipped if r.id not in replaced] + own)


def _load_dir(folder: Path) -> list[PolicyRule]:
    if not folder.is_dir():
        raise InputError(
            [
                Problem(
                    str(folder),
                    0,
                    0,
                    "",
                    "not a folder of policy files",
                    "give --policy-dir a folder holding *.yaml rule files",
                )
            ]
        )
    rules: list[PolicyRule] = []
    problems: list[Problem] = []
    for file in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            rules += load_policy_file(file)
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems)
    return rules


def load_policy_file(path: str | os.PathLike[str]) -> list[PolicyRule]:
    """The rules of one policy file, checked against schemas/policy.schema.json."""
    source = os.fspath(path)
    data = yamlsafe.read_capped(path, source)
    if not data.strip() or all(
        line.lstrip().startswith(b"#") for line in data.splitlines() if line.strip()
    ):
        raise InputError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "",
                    "empty policy file: expected rules: [...]",
                    "see policies/defaults.yaml, or delete the file",
                )
            ]
        )
    doc = yamlsafe.load_yaml(data, source)
    problems = list(doc.problems)
    for error in _policy_validator().iter_errors(doc.data):
        problems += explain(error, doc.locate, source)
    if not problems:
        problems += _rule_schema_problems(doc, source)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.line, p.column, p.path)))
    rules = []
    for i, raw in enumerate(doc.data["rules"]):
        line, _ = doc.locate(("rules", i))
        rules.append(
            PolicyRule(
                id=raw["id"],
                severity=raw["severity"],
                target=raw["target"],
                message=raw["message"].strip(),
                rule=raw["rule"],
                source=f"{source}:{line}",
                description=raw.get("description", ""),
            )
        )
    return rules


def _rule_schema_problems(doc: yamlsafe.YamlDocument, source: str) -> list[Problem]:
    """Each `rule` must itself be a valid JSON Schema."""
    problems = []
    for i, raw in enumerate(doc.data["rules"]):
        try:
            Draft202012Validator.check_schema(raw["rule"])
        except SchemaError as e:
            at: yamlsafe.Path = ("rules", i, "rule", *e.absolute_path)
            line, column = doc.locate(at)
            problems.append(
                Problem(
                    source,
                    line,
                    column,
                    yamlsafe.format_path(at),
                    f"not a valid JSON Schema: {_clip(e.message)}",
                    "a rule is a JSON Schema, draft 2020-12",
                )
            )
    return problems


def _duplicates(rules: Iterable[PolicyRule]) -> list[Problem]:
    seen: dict[str, PolicyRule] = {}
    problems = []
    for rule in rules:
        first = seen.setdefault(rule.id, rule)
        if first is not rule:
            file, _, line = rule.source.rpartition(":")
            problems.append(
                Problem(
                    file,
                    int(line),
                    0,
                    "rules",
                    f"duplicate rule id {rule.id!r} (first defined at {first.source})",
                    "give every rule its own id",
                )
            )
    return problems


@cache
def _policy_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(POLICY_SCHEMA))


# --- evaluation -------------------------------------------------------------------------------


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
                notes.append(f"{rule.id}: not evaluated, the desired-state file is not at hand")
                continue
            finding = _check(rule, desired.document, _DesiredPlaces(desired))
        else:
            if plan is None or plan_docs is None:
                notes.append(f"{rule.id}: not evaluated, there is no plan")
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
                places.append(f"{place(tuple(error.absolute_path))} ({_clip(error.message)})")
    except Unresolvable as e:
        file, _, line = rule.source.rpartition(":")
        raise InputError(
            [
                Problem(
                    file,
                    int(line),
                    0,
                    "rule",
                    f"policy rule {rule.id!r} has a $ref that cannot be resolved: {_clip(str(e))}",
                    "use local references only (#/$defs/...)",
                )
            ]
        ) from e
    if not total:
        return None
    return Finding(rule, tuple(places), total - len(places))


def _clip(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= MAX_REASON else one_line[: MAX_REASON - 1] + "…"

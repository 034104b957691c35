"""Policy files (docs/contract.md#policies): load the shipped `policies/defaults.yaml` and
every `--policy-dir`, check each against schemas/policy.schema.json, and refuse duplicate ids.
Evaluating the rules is reconciler.policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from reconciler import yamlsafe
from reconciler.desired import explain
from reconciler.errors import InputError, Problem
from reconciler.i18n import Said
from reconciler.policy import POLICY_SCHEMA, PolicyRule, clip
from reconciler.resources import data_dir, load_schema

__all__ = ["default_policy_dir", "load_policies", "load_policy_file"]


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
                    Said.of("not a folder of policy files"),
                    Said.of("give --policy-dir a folder holding *.yaml rule files"),
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
                    Said.of("empty policy file: expected rules: [...]"),
                    Said.of("see policies/defaults.yaml, or delete the file"),
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
                message=_message(raw["message"]),
                messages=_messages(raw["message"]),
                rule=raw["rule"],
                source=f"{source}:{line}",
                description=raw.get("description", ""),
            )
        )
    return rules


def _message(written: str | dict[str, str]) -> str:
    """The message JSON carries: the one text, or its English (else its Japanese)."""
    if isinstance(written, str):
        return written.strip()
    return (written.get("en") or written["ja"]).strip()


def _messages(written: str | dict[str, str]) -> tuple[tuple[str, str], ...]:
    if isinstance(written, str):
        return ()
    return tuple((lang, text.strip()) for lang, text in sorted(written.items()))


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
                    Said.of("not a valid JSON Schema: {why}", why=clip(e.message)),
                    Said.of("a rule is a JSON Schema, draft 2020-12"),
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
                    Said.of(
                        "duplicate rule id {id} (first defined at {first})",
                        id=repr(rule.id),
                        first=first.source,
                    ),
                    Said.of("give every rule its own id"),
                )
            )
    return problems


@cache
def _policy_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(POLICY_SCHEMA))


# --- evaluation -------------------------------------------------------------------------------

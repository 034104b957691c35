"""A saved plan read back: the file checked, its digests, and the desired state it carries.

Nothing in a saved plan decides what apply does. `read_saved_plan` validates the file against
schemas/plan.schema.json (every malformed plan is an InputError, exit 1), checks that its
digests match its content (an accidental edit is refused early, exit 3) and rebuilds the
desired state from the embedded document through the same checks a desired-state file goes
through. apply then plans that desired state again against the tenant and applies only when
the result is the file, field for field (`first_difference`, used by reconciler.workflow):
the digests are recomputable by anyone, so they are a check for accidents, not a signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from reconciler.change_shape import change_ok
from reconciler.desired import explain, parse_desired
from reconciler.errors import InputError, Problem, StalePlan
from reconciler.files import read_input
from reconciler.i18n import N_, Msg, Said
from reconciler.model import DesiredState
from reconciler.plan import (
    FORMAT_VERSION,
    Plan,
    canonical_bytes,
    document_digest,
    unsupported_version,
)
from reconciler.resources import load_schema
from reconciler.sourcelines import SavedLines
from reconciler.yamlsafe import Locator, format_path

SCHEMA_FILE = "plan.schema.json"
MAX_PROBLEMS = 20  # a plan is written by lwr: the first few problems say it was damaged
REPLAN_HINT = N_("make a new plan with `lwr plan FILE --out PLAN.json` and review it")
# Left out of the comparison with a fresh plan: they describe when and by what the plan was
# made, not what it does (and a fresh plan takes them from the saved one).
METADATA = ("format_version", "tool_version", "source", "created_at")


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan that passed the file checks; not yet checked against any tenant."""

    path: str
    document: Mapping[str, Any]  # the file as parsed: what a fresh plan must equal
    plan: Plan  # as the file says: for showing only, never for deciding
    desired: DesiredState  # rebuilt from the file's desired_document

    def pin(self, fresh: Plan) -> Plan:
        """`fresh` with the saved plan's metadata: equal content then means an equal digest."""
        return replace(
            fresh,
            format_version=self.plan.format_version,
            tool_version=self.plan.tool_version,
            source=self.plan.source,
            created_at=self.plan.created_at,
        )


def read_saved_plan(path: str | Path) -> SavedPlan:
    """Read and check a plan written by `lwr plan --out` (not yet against a tenant)."""
    source = str(path)
    data = _read_json(path, source)
    version = data.get("format_version")
    if isinstance(version, str) and version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise InputError([unsupported_version(source, version)])  # before the schema: say why
    problems = schema_problems(data, source)
    if problems:
        raise InputError(problems)
    if data["desired_document"] is None:
        raise InputError(
            [
                Problem(
                    source,
                    0,
                    0,
                    "desired_document",
                    Said.of(
                        "the plan carries no desired document (it was made from a desired "
                        "state built in memory), so apply cannot check it"
                    ),
                    Said.of(
                        "make the plan from a desired-state file: `lwr plan FILE --out PLAN.json`"
                    ),
                )
            ]
        )
    _check_digests(data, source)
    # The document's JSON has no lines worth quoting: a fresh plan quotes the plan's own.
    desired = replace(
        _rebuild_desired(data["desired_document"], source), lines=SavedLines.of(data["changes"])
    )
    plan = Plan.from_json(data, source)
    # Its identity is the file's plan_digest, just checked against the file's content; a
    # digest of the Plan read back (~0.25 s at 10k changes) could only differ for a file
    # that fails the comparison with a fresh plan anyway.
    vars(plan)["digest"] = data["plan_digest"]
    return SavedPlan(source, data, plan, desired)


def _read_json(path: str | Path, source: str) -> dict[str, Any]:
    try:
        text = read_input(path).decode("utf-8")  # a FIFO is refused, not waited on
    except UnicodeDecodeError as e:
        said = Said.of("cannot read saved plan: {reason}", reason=str(e))
        raise InputError([Problem(source, 0, 0, "", said)]) from e
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise _not_json(source, e.msg, e.lineno, e.colno) from e
    except ValueError as e:  # a number of over 4300 digits, or NaN / Infinity
        raise _not_json(source, _unreadable_value(e)) from e
    except RecursionError as e:
        raise _not_json(source, Said.of("nested too deeply")) from e
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    source,
                    0,
                    0,
                    "",
                    Said.of("not a saved plan: the JSON is not an object"),
                    _WRITE_ONE,
                )
            ]
        )
    return data


#: The hint of a file that is not a saved plan at all.
_WRITE_ONE = Said.of("write one with `lwr plan FILE --out PLAN.json`")


def _not_json(source: str, detail: str, line: int = 0, column: int = 0) -> InputError:
    return InputError(
        [
            Problem(
                source,
                line,
                column,
                "",
                Said.of("not a saved plan: not valid JSON ({detail})", detail=detail),
                _WRITE_ONE,
            )
        ]
    )


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; json.loads would accept them.
    raise ValueError(Said.of("{name} is not a JSON value", name=name))


def _unreadable_value(error: ValueError) -> str:
    """Why json.loads gave up on a value: ours (NaN, Infinity) or Python's digit limit."""
    if error.args and isinstance(error.args[0], Said):
        return error.args[0]
    return Said.of("a number too long to read") if "digits" in str(error) else str(error)


# --- the schema -----------------------------------------------------------------------------


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(SCHEMA_FILE))


def schema_problems(data: dict[str, Any], source: str) -> list[Problem]:
    """Where `data` breaks schemas/plan.schema.json, the first MAX_PROBLEMS of them.

    jsonschema takes ~0.25 ms per change (2.3 s for a 10k-change plan), so the change list
    is checked by `change_ok`, which accepts only what the schema accepts; a change it does
    not accept goes through jsonschema, whose verdict and words are the ones reported.
    """
    validator = _validator()
    changes = data.get("changes")
    items = changes if isinstance(changes, list) else []
    head = {**data, "changes": []} if items else data
    found = [p for e in validator.iter_errors(head) for p in _explain(e, (), source)]
    root = load_schema(SCHEMA_FILE)  # the change's $refs resolve against its $defs
    item_validator = validator.evolve(schema={**root["$defs"]["change"], "$defs": root["$defs"]})
    for i, change in enumerate(items):
        if len(found) >= MAX_PROBLEMS:
            break
        if not change_ok(change):
            found.extend(
                p
                for e in item_validator.iter_errors(change)
                for p in _explain(e, ("changes", i), source)
            )
    return found[:MAX_PROBLEMS]


def _explain(error: Any, base: tuple[str | int, ...], source: str) -> Iterator[Problem]:
    for problem in explain(error, Locator(), source):
        at = format_path((*base, *error.absolute_path))
        # The hint is always the way out: lwr writes plans, so a malformed one was damaged.
        yield Problem(problem.file, 0, 0, at, problem.message[:300], Said.of(REPLAN_HINT))


# --- digests and the desired document -------------------------------------------------------


def _check_digests(data: dict[str, Any], source: str) -> None:
    """Refuse (exit 3) a plan whose content does not match its digests: it was edited."""
    body = {key: value for key, value in data.items() if key != "plan_digest"}
    if data["desired_digest"] != document_digest(data["desired_document"]):
        raise _edited(
            source, Msg.of(N_("its desired_document no longer matches its desired_digest"))
        )
    if data["plan_digest"] != hashlib.sha256(canonical_bytes(body)).hexdigest():
        raise _edited(source, Msg.of(N_("its content no longer matches its plan_digest")))


def _edited(source: str, why: Msg) -> StalePlan:
    text = N_("refused: {source} was edited after it was made ({why}); {hint}")
    return StalePlan(Said.of(text, source=source, why=why, hint=Msg.of(REPLAN_HINT)))


def _rebuild_desired(document: Mapping[str, Any], source: str) -> DesiredState:
    """The embedded document through the desired-file pipeline (safe YAML, schema, rules).

    Its canonical JSON is parsed as a desired file would be, so a document no file could hold
    (control characters, a wrong type, a duplicate member) is refused the same way.
    """
    where = f"{source} (desired_document)"
    desired = parse_desired(_yaml_json(document).encode(), where)
    if desired.document != document:  # the YAML reading changed a value: never re-plan that
        raise InputError(
            [
                Problem(
                    source,
                    0,
                    0,
                    "desired_document",
                    Said.of("the desired document does not read back as written"),
                    Said.of(REPLAN_HINT),
                )
            ]
        )
    return desired


def _yaml_json(value: Any) -> str:
    """`value` as JSON that the YAML loader reads back as the same value.

    canonical_bytes but for floats: YAML 1.1 reads `1e-05` as text and needs `1.0e-05`.
    """
    if isinstance(value, dict):
        return "{" + ",".join(f"{_yaml_json(k)}:{_yaml_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        if all(type(item) is str for item in value):  # member lists: one call, not 100k
            return canonical_bytes(value).decode()
        return "[" + ",".join(_yaml_json(item) for item in value) + "]"
    if type(value) is float:
        mantissa, e, exponent = repr(value).partition("e")
        return f"{mantissa}.0{e}{exponent}" if e and "." not in mantissa else repr(value)
    return canonical_bytes(value).decode()


# --- the comparison -------------------------------------------------------------------------


def first_difference(saved: Mapping[str, Any], fresh: Mapping[str, Any]) -> str | None:
    """Where a fresh plan's document differs from the saved one, in words; None when equal.

    Compared strictly (a 1 is not a 1.0 nor a true), every key but the metadata and
    `plan_digest`; changes by position, naming the first differing change and field.
    """
    keys = [k for k in dict.fromkeys([*saved, *fresh]) if k not in (*METADATA, "plan_digest")]
    for key in keys:
        if key == "changes" and isinstance(saved.get(key), list):
            found = _changes_difference(saved[key], fresh.get(key, []))
            if found:
                return found
        elif not _same(saved.get(key, _MISSING), fresh.get(key, _MISSING)):
            return Said.of(
                "{key}: the plan says {saved}, planning now gives {fresh}",
                key=key,
                saved=_brief(saved.get(key, _MISSING)),
                fresh=_brief(fresh.get(key, _MISSING)),
            )
    return None


def _changes_difference(saved: list[Any], fresh: list[Any]) -> str | None:
    for i, (a, b) in enumerate(zip(saved, fresh, strict=False)):
        if _same(a, b):
            continue
        label = {"i": i + 1, "id": _brief(a.get("id") if isinstance(a, dict) else None)}
        if isinstance(a, dict) and isinstance(b, dict):
            for field in dict.fromkeys([*b, *a]):
                if not _same(a.get(field, _MISSING), b.get(field, _MISSING)):
                    return Said.of(
                        "change {i} ({id}): {field} is {saved} in the plan, {fresh} when "
                        "planned now",
                        field=field,
                        saved=_brief(a.get(field, _MISSING)),
                        fresh=_brief(b.get(field, _MISSING)),
                        **label,
                    )
        return Said.of("change {i} ({id}) differs from change {i} planned now", **label)
    if len(saved) != len(fresh):
        extra = saved[len(fresh)] if len(saved) > len(fresh) else fresh[len(saved)]
        name = extra.get("id") if isinstance(extra, dict) else None
        return Said.counted(
            "the plan has {n} change, planning now gives {fresh} (first not in both: {id})",
            "the plan has {n} changes, planning now gives {fresh} (first not in both: {id})",
            len(saved),
            fresh=len(fresh),
            id=_brief(name),
        )
    return None


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _brief(value: Any) -> str:
    if value is _MISSING:
        return Said.of("absent")
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "…"

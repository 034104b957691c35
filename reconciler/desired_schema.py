"""The desired-state file against its JSON Schema: every finding as a located `Problem`.

Owns validating the parsed document with schemas/desired-state.schema.json (a fast path for
the members lists, which can hold 100k items), and wording each finding for a person: the
key that was meant, the type expected, a hint. `explain` words a schema error of any lwr
file (saved plans and policy files use it too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from reconciler.errors import Omitted, Problem
from reconciler.i18n import Said
from reconciler.resources import load_schema
from reconciler.schema_words import add_key_hint, hint, keys_hint, message, not_allowed
from reconciler.yamlsafe import Locator, Path, format_path

SCHEMA_FILE = "desired-state.schema.json"
MAX_PROBLEMS = 1000  # a file with 100k bad members needs the first screenful, not 100k lines

INCLUDE = ("members", "include")

# Keywords that only annotate; they never make an instance invalid.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "x-hint",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
# Keywords the fast member check below reproduces exactly.
_FAST_ITEM_KEYWORDS = frozenset({"type", "pattern", "maxLength", "minLength"}) | _ANNOTATIONS


def more_problems(source: str, count: int, message: Said, path: Path = ()) -> Omitted:
    """Stands for `count` more problems of a kind, found but not listed one by one;
    `message` says so (`Said.counted("{n:,} more … not shown", …, count)`)."""
    return Omitted(
        source,
        0,
        0,
        format_path(path),
        message,
        Said.of("fix the ones shown and run again"),
        count,
    )


# --- JSON Schema ----------------------------------------------------------------------------


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(SCHEMA_FILE))


@dataclass(frozen=True)
class _ItemCheck:
    """An exact, fast stand-in for validating one member email against its subschema."""

    channels: tuple[str, ...]
    schema: Mapping[str, Any]
    pattern: re.Pattern[str] | None
    min_length: int
    max_length: int | None

    def failures(self, items: list[Any]) -> list[int]:
        """Indexes of the items jsonschema would reject (keywords vetted in _item_check)."""
        lo, hi = self.min_length, self.max_length
        search = self.pattern.search if self.pattern else None
        try:  # the common case, all valid strings, in C-speed map()s
            if (
                (search is None or None not in map(search, items))
                and (lo == 0 or not items or lo <= min(map(len, items)))
                and (hi is None or not items or max(map(len, items)) <= hi)
            ):
                return []
        except TypeError:  # a non-string item: the slow loop below says which
            pass
        return [
            i
            for i, item in enumerate(items)
            if type(item) is not str
            or len(item) < lo
            or (hi is not None and len(item) > hi)
            or (search is not None and search(item) is None)
        ]


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow local `$ref`s that stand alone (beside annotations only) to their target."""
    while (
        isinstance(schema, dict) and "$ref" in schema and not set(schema) - _ANNOTATIONS - {"$ref"}
    ):
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return None
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        schema = target
    return schema


@cache
def _item_check() -> _ItemCheck | None:
    """The fast path for member lists, or None when the schema needs full jsonschema.

    Why: jsonschema spends ~13 µs per array item, 1.3 s for 100k members, more than parsing
    the YAML. The member items are the only big part of a file, and their subschema is a
    string with a pattern and a length: a compiled regex checks that exactly in ~1 µs. So the
    document goes through jsonschema with each channel's `members.include` list swapped for
    an empty one, and the items are checked here; an item that fails goes through jsonschema
    with the item subschema, so its message and path are exactly what jsonschema would say.
    The subschemas are taken from the loaded schema: if the include array or its items use a
    keyword not reproduced here (uniqueItems, format, enum, ...), we fall back to full
    jsonschema validation. The route to `include` must be plain `$ref`s; anything fancier
    also falls back. tests/test_desired.py checks both paths agree on broken files.
    """
    root = load_schema(SCHEMA_FILE)
    try:
        channels = root["properties"]["external_messaging"]["properties"]
        include_schemas = []
        for channel in channels.values():
            members = _resolve(_resolve(channel, root)["properties"]["members"], root)
            listed = _resolve(members["else"], root)
            include_schemas.append(_resolve(listed["properties"]["include"], root))
    except (KeyError, TypeError):
        return None
    include = include_schemas[0]
    if any(s != include for s in include_schemas) or not isinstance(include, dict):
        return None
    if set(include) - _ANNOTATIONS - {"type", "items"} or include.get("type") != "array":
        return None
    items = _resolve(include.get("items"), root)
    if not isinstance(items, dict) or set(items) - _FAST_ITEM_KEYWORDS:
        return None
    if items.get("type") != "string":
        return None
    pattern = items.get("pattern")
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else None
    except re.error:
        return None
    return _ItemCheck(
        tuple(channels), items, compiled, items.get("minLength", 0), items.get("maxLength")
    )


def include_lists(data: Any, channels: Iterable[str]) -> Iterator[tuple[str, list[Any]]]:
    """(channel, include list) for each channel whose members.include is a list."""
    em = data.get("external_messaging") if isinstance(data, dict) else None
    if not isinstance(em, dict):
        return
    for channel in channels:
        spec = em.get(channel)
        members = spec.get("members") if isinstance(spec, dict) else None
        include = members.get("include") if isinstance(members, dict) else None
        if isinstance(include, list):
            yield channel, include


def _without_includes(data: Any, channels: Iterable[str]) -> Any:
    """A copy of `data` sharing all but the few dicts on the way to each include list."""
    swapped = data
    for channel, _ in list(include_lists(data, channels)):
        swapped = dict(swapped)
        em = swapped["external_messaging"] = dict(swapped["external_messaging"])
        spec = em[channel] = dict(em[channel])
        members = spec["members"] = dict(spec["members"])
        members["include"] = []
    return swapped


_MORE = "x-lwr-more"  # the pseudo-keyword of the error counting item errors not explained


def _schema_errors(data: Any, fast: bool = True) -> Iterator[tuple[Path, ValidationError]]:
    """Every schema violation with its absolute path, via the fast path when it applies."""
    validator = _validator()
    check = _item_check() if fast else None
    if check is None:
        for error in validator.iter_errors(data):
            yield tuple(error.absolute_path), error
        return
    for error in validator.iter_errors(_without_includes(data, check.channels)):
        yield tuple(error.absolute_path), error
    item_validator = validator.evolve(schema=check.schema)
    for channel, include in include_lists(data, check.channels):
        failing = check.failures(include)
        for i in failing[:MAX_PROBLEMS]:  # jsonschema's ~20 µs each: not for millions
            base = ("external_messaging", channel, *INCLUDE, i)
            for error in item_validator.iter_errors(include[i]):
                yield (*base, *error.absolute_path), error
        if len(failing) > MAX_PROBLEMS:  # counted, for _schema_problems to report
            yield (
                ("external_messaging", channel, *INCLUDE),
                ValidationError(
                    "more invalid members",
                    validator=_MORE,
                    validator_value=len(failing) - MAX_PROBLEMS,
                    instance=include,
                    schema={},
                ),
            )


def schema_problems(data: Any, locate: Locator, source: str, fast: bool = True) -> list[Problem]:
    """All schema findings as Problems; a key already reported as unknown is not re-reported."""
    found: list[tuple[Problem, str]] = []
    for path, error in _schema_errors(data, fast):
        if error.validator == _MORE:
            count = error.validator_value if isinstance(error.validator_value, int) else 0
            more = Said.counted(
                "{n:,} more invalid member not shown", "{n:,} more invalid members not shown", count
            )
            found.append((more_problems(source, count, more, path), "value"))
            continue
        found.extend(_explain(error, path, locate, source))
    bad_keys = {p.path for p, kind in found if kind == "key"}
    # dict.fromkeys: jsonschema says "required" once per missing key; we name all each time.
    return list(
        dict.fromkeys(p for p, kind in found if kind != "conditional-key" or p.path not in bad_keys)
    )


# --- messages: reconciler.schema_words --------------------------------------------------------


def explain(error: ValidationError, locate: Locator, source: str) -> list[Problem]:
    """One error of any JSON Schema as located, worded Problems (policy files use it too)."""
    return [problem for problem, _ in _explain(error, tuple(error.absolute_path), locate, source)]


def _explain(
    error: ValidationError, path: Path, locate: Locator, source: str
) -> list[tuple[Problem, str]]:
    """One error → located Problems, tagged "key" (bad key), "conditional-key" or "value"."""
    schema, keyword, value = error.schema, str(error.validator), error.instance
    rule = hint(schema, keyword)

    def problem(at: Path, text: str, advice: str, kind: str = "value") -> tuple[Problem, str]:
        line, column = locate(at)
        return Problem(source, line, column, format_path(at), text, advice), kind

    if keyword == "additionalProperties" and isinstance(schema, dict) and isinstance(value, dict):
        valid = list(schema.get("properties", {}))
        extras = [k for k in value if k not in schema.get("properties", {})]
        # A million junk keys: the first screenful, located, and a count of the rest.
        rest = len(extras) - MAX_PROBLEMS
        said = Said.counted(
            "{n:,} more unknown key not shown", "{n:,} more unknown keys not shown", rest
        )
        more = [(more_problems(source, rest, said, path), "value")] if rest > 0 else []
        extras = extras[:MAX_PROBLEMS]
        if rule:  # a rule (the then-branch of "off means nothing else"), not a typo
            return [
                problem((*path, k), not_allowed(k), rule, "conditional-key") for k in extras
            ] + more
        return [
            problem(
                (*path, k), Said.of("unknown key {key}", key=repr(k)), keys_hint(k, valid), "key"
            )
            for k in extras
        ] + more
    if keyword == "required" and isinstance(schema, dict) and isinstance(value, dict):
        properties = schema.get("properties", {})
        required: list[str] = schema.get("required", [])
        return [
            problem(
                path,
                Said.of("missing required key {key}", key=repr(key)),
                rule or add_key_hint(key, properties.get(key)),
            )
            for key in required
            if key not in value
        ]
    branches: Any = error.validator_value
    if keyword == "anyOf" and isinstance(value, dict) and _all_required(branches):
        keys = [key for branch in branches for key in branch["required"]]
        missing = Said.of("missing one of the keys {keys}", keys=", ".join(keys))
        return [problem(path, missing, rule or "")]
    if keyword == "not" and path and isinstance(path[-1], str):
        return [problem(path, not_allowed(path[-1]), rule or "", "key")]
    text, default = message(error, keyword, value, schema)
    return [problem(path, text, rule or default)]


def _all_required(branches: Any) -> bool:
    """An anyOf of `required` keywords only: "one of these keys" (members' lists)."""
    return isinstance(branches, list) and all(
        isinstance(b, dict) and set(b) == {"required"} for b in branches
    )

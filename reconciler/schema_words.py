"""The words of a JSON Schema finding: each message and hint of reconciler.desired_schema.

Each is an `i18n.Said`: English in InputError's text, said again in the reader's language
by the CLI. The schemas' `x-hint`s, `title`s and the descriptions of required keys are
message ids too: `make messages` extracts them from schemas/*.json (babel_schema.py).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from jsonschema.exceptions import ValidationError

from reconciler.i18n import N_, Msg, Said

__all__ = ["add_key_hint", "hint", "keys_hint", "message", "not_allowed"]

_TYPE_WORDS = {
    "object": N_("a mapping"),
    "array": N_("a list"),
    "string": N_("text"),
    "boolean": N_("true or false"),
    "integer": N_("a whole number"),
    "number": N_("a number"),
    "null": N_("nothing"),
}


def hint(schema: Any, keyword: str) -> Said | None:
    """The schema's `x-hint` for this keyword: a string applies to all, a mapping per keyword."""
    hint = schema.get("x-hint") if isinstance(schema, dict) else None
    if isinstance(hint, dict):
        hint = hint.get(keyword)
    return Said.of(hint) if isinstance(hint, str) and hint else None


def _show(value: Any) -> Msg | str:
    """A short rendering of a value for a message (never a whole 1 MB string)."""
    if isinstance(value, dict):
        return Msg.of(N_("a mapping"))
    if isinstance(value, list):
        return Msg.of(N_("a list"))
    if value is None:
        return Msg.of(N_("nothing"))
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + '…"'


def _kind(value: Any) -> Msg | str:
    if isinstance(value, dict | list | bool) or value is None:
        return _show(value)
    if isinstance(value, int | float):
        return Msg.of("the number {value}", value=_show(value))
    return Msg.of("the text {value}", value=_show(value))


def _either(types: list[Any]) -> Msg | str:
    """`a mapping or a list`: the type words of `types`, joined two at a time."""
    words = [Msg.of(_TYPE_WORDS[str(t)]) if str(t) in _TYPE_WORDS else str(t) for t in types]
    joined: Msg | str = words[0]
    for word in words[1:]:
        joined = Msg.of("{first} or {second}", first=joined, second=word)
    return joined


def _close(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return repr(found[0]) if found else None


def not_allowed(key: str) -> Said:
    return Said.of("key {key} is not allowed here", key=repr(key))


def keys_hint(key: str, valid: list[str]) -> Said:
    close, keys = _close(key, valid), ", ".join(valid)
    if close:
        return Said.of("did you mean {close}? valid keys here: {keys}", close=close, keys=keys)
    return Said.of("valid keys here: {keys}", keys=keys)


def add_key_hint(key: str, schema: Any) -> Said:
    about = schema.get("description") if isinstance(schema, dict) else None
    if isinstance(about, str) and about:  # a message id too (extracted from the schema)
        return Said.of("add the key {key} ({about})", key=key, about=Msg.of(about))
    return Said.of("add the key {key}", key=key)


def message(
    error: ValidationError, keyword: str, value: Any, schema: Any
) -> tuple[Said | str, Said | str]:
    """(message, the hint unless the schema has one) for a value-level error."""
    expected: Any = error.validator_value
    if keyword == "type":
        words = _either(expected if isinstance(expected, list) else [expected])
        return (
            Said.of("expected {words}, got {kind}", words=words, kind=_kind(value)),
            Said.of("write {words} here", words=words),
        )
    if keyword == "enum":
        options = ", ".join(str(o) for o in expected)
        close = _close(value, [str(o) for o in expected]) if isinstance(value, str) else None
        near = (
            Said.of("did you mean {close}? valid values: {options}", close=close, options=options)
            if close
            else Said.of("valid values: {options}", options=options)
        )
        return Said.of("{value} is not one of {options}", value=_show(value), options=options), near
    if keyword == "const":
        return (
            Said.of("expected {words}, got {kind}", words=_show(expected), kind=_kind(value)),
            Said.of("write {value}", value=_show(expected)),
        )
    if keyword == "pattern":
        title = schema.get("title") if isinstance(schema, dict) else None
        name = Msg.of(title) if isinstance(title, str) else Msg.of(N_("value"))
        return (
            Said.of("{value} is not a valid {title}", value=_show(value), title=name),
            Said.of("must match {pattern}", pattern=expected),
        )
    if keyword in ("maxLength", "minLength"):
        size = len(value) if isinstance(value, str) else 0
        if keyword == "maxLength":
            return (
                Said.of("too long: {size:,} characters, at most {n}", size=size, n=expected),
                Said.of("write at most {n} characters", n=expected),
            )
        return (
            Said.of("too short: {size:,} characters, at least {n}", size=size, n=expected),
            Said.of("write at least {n} characters", n=expected),
        )
    if keyword in ("minimum", "maximum"):
        shown = _show(value)
        return (
            Said.of("{value} is below the minimum {n}", value=shown, n=expected)
            if keyword == "minimum"
            else Said.of("{value} is above the maximum {n}", value=shown, n=expected),
            Said.of("write a number from 0 to 100"),
        )
    if keyword == "minProperties":
        return Said.of("empty mapping"), Said.of("add a key or leave this out")
    if keyword == "uniqueItems" and isinstance(value, list):
        dup = next((v for i, v in enumerate(value) if v in value[:i]), None)
        return (
            Said.of("{value} is listed more than once", value=_show(dup)),
            Said.of("list each value once"),
        )
    return error.message[:200], ""  # jsonschema's own words, for keywords lwr's schemas lack

"""A change's canonical JSON (sorted keys, no spaces, UTF-8 kept), spelled out by hand.

The plan digest hashes every change's canonical JSON and the journal stores it again, so a
100k-change apply encodes 200k changes: `json.dumps(change.to_json(), sort_keys=True, …)`
builds a dict and a fresh encoder each time, this writes the same text directly, about three
times faster. It is not kept between the two: at 100k changes the texts are ~40 MiB. Exactly
`json.dumps(change.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)`;
tests/test_change_json.py holds the two together.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _str  # what dumps(ensure_ascii=False) uses
from typing import Any

from reconciler.actions import Change
from reconciler.side_effects import SideEffect

__all__ = ["change_json", "json_constant"]


def change_json(change: Change, *, allow_nan: bool = True) -> str:
    """`change.to_json()` in canonical JSON, without building the dict (`allow_nan` as
    json.dumps has it: the plan digest refuses NaN, the journal row never had to)."""
    because = change.because
    parts = [
        '{"action":',
        _str(change.action),
        ',"after":',
        _value(change.after, allow_nan),
    ]
    if because is not None:
        parts += (
            ',"because":{"line":',
            "null" if because.line is None else str(int(because.line)),
            ',"name":',
            "null" if because.name is None else _str(because.name),
            ',"rule":',
            _str(because.rule),
            "" if because.via is None else ',"via":' + _str(because.via),
            "}",
        )
    parts += (
        ',"before":',
        _value(change.before, allow_nan),
        ',"channel":',
        _str(change.channel),
        ',"depends_on":[',
        ",".join(map(_str, change.depends_on)),
        '],"destructive":',
        "true" if change.destructive else "false",
        ',"execution":',
        _str(change.execution),
        ',"id":',
        _str(change.id),
        ',"phase":',
        str(int(change.phase)),
        ',"reason":',
        _str(change.reason),
        ',"side_effects":',
        "[" + ",".join([_effect(s, allow_nan) for s in change.side_effects]) + "]",
        ',"target":',
        "null" if change.target is None else _str(change.target),
    )
    if change.threshold is not None:
        parts += (',"threshold":', _canonical(change.threshold.to_json(), allow_nan))
    parts.append("}")
    return "".join(parts)


def _effect(effect: SideEffect, allow_nan: bool) -> str:
    count = "" if effect.count is None else '"count":' + _value(effect.count, allow_nan) + ","
    return "{" + count + '"kind":' + _str(effect.kind) + ',"text":' + _str(effect.text) + "}"


#: true, false and null as json.dumps spells them: most values are one of these.
_CONSTANTS: dict[object, str] = {True: "true", False: "false", None: "null"}


def json_constant(value: Any) -> str | None:
    """`value`'s JSON when it is True, False or None (by identity: 1 and 0 are numbers), as
    json.dumps writes it; None otherwise. Spelled directly: the hot path of every digest."""
    if value is True or value is False or value is None:
        return _CONSTANTS[value]
    return None


def _value(value: Any, allow_nan: bool) -> str:
    # Most values are booleans, None or text: spelled directly, the same as dumps would.
    if (constant := json_constant(value)) is not None:
        return constant
    if type(value) is str:
        return _str(value)
    if type(value) is int:
        return str(value)
    return _canonical(value, allow_nan)


def _canonical(value: Any, allow_nan: bool) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan
    )

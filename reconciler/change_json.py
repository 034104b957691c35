"""A change's canonical JSON (sorted keys, no spaces, UTF-8 kept), spelled out by hand.

The plan digest hashes every change's canonical JSON and the journal stores it again, so a
100k-change apply encodes 200k changes: `json.dumps(change.to_json(), sort_keys=True, …)`
builds a dict and a fresh encoder each time, this writes the same text directly. It is not
kept between the two: at 100k changes the texts are ~40 MiB. Exactly
`json.dumps(change.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)`;
tests/test_change_json.py holds the two together.

A member list's changes differ only in id, target and `because`: `changes_json` spells the
rest (the frame) once for each run of such changes and fills in those three, a third of the
work of spelling every change whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring as _str  # what dumps(ensure_ascii=False) uses
from typing import Any

from reconciler.actions import Change
from reconciler.model import Because
from reconciler.side_effects import SideEffect

__all__ = ["change_json", "changes_json", "json_constant"]

#: A change's text but id, target and because, in three parts: before `because`, between
#: `because` and the id, between the id and the target; and what follows the target.
_Frame = tuple[str, str, str, str]


def change_json(change: Change, *, allow_nan: bool = True) -> str:
    """`change.to_json()` in canonical JSON, without building the dict (`allow_nan` as
    json.dumps has it: the plan digest refuses NaN, the journal row never had to)."""
    return _filled(_frame(change, allow_nan), change)


def changes_json(changes: Iterable[Change], *, allow_nan: bool = True) -> Iterator[str]:
    """`change_json` of each change in turn; a change whose every other field is the very
    same object as the previous change's (a member list's run) reuses its frame."""
    last: Change | None = None
    frame: _Frame = ("", "", "", "")
    for change in changes:
        # Identity, not equality, for the values: True == 1 but they are spelled apart. The
        # phase follows from the action and `after`, so it is the same too.
        if not (
            last is not None
            and change.action is last.action
            and change.after is last.after
            and change.before is last.before
            and change.channel is last.channel
            and change.side_effects is last.side_effects
            and change.threshold is last.threshold
            and change.destructive is last.destructive
            and change.execution is last.execution
            and change.reason is last.reason
            and change.depends_on == last.depends_on
        ):
            frame = _frame(change, allow_nan)
            # A dict could change between two changes: only values that cannot are reused.
            immutable = type(change.after) in _SCALARS and type(change.before) in _SCALARS
            last = change if immutable else None
        yield _filled(frame, change)


def _filled(frame: _Frame, change: Change) -> str:
    """`change`'s text: its frame with its because, id and target put in."""
    head, middle, after_id, tail = frame
    target = change.target
    return "".join(
        (
            head,
            _because(change.because),
            middle,
            _str(change.id),
            after_id,
            "null" if target is None else _str(target),
            tail,
        )
    )


def _frame(change: Change, allow_nan: bool) -> _Frame:
    """Everything of `change`'s text but its id, target and because."""
    threshold = change.threshold
    return (
        '{"action":' + _str(change.action) + ',"after":' + _value(change.after, allow_nan),
        "".join(
            (
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
            )
        ),
        "".join(
            (
                ',"phase":',
                str(int(change.phase)),
                ',"reason":',
                _str(change.reason),
                ',"side_effects":',
                "[" + ",".join([_effect(s, allow_nan) for s in change.side_effects]) + "]",
                ',"target":',
            )
        ),
        ("" if threshold is None else ',"threshold":' + _canonical(threshold.to_json(), allow_nan))
        + "}",
    )


def _because(because: Because | None) -> str:
    if because is None:
        return ""
    line, name, via = because.line, because.name, because.via
    return "".join(
        (
            ',"because":{"line":',
            "null" if line is None else str(int(line)),
            ',"name":',
            "null" if name is None else _str(name),
            ',"rule":',
            _str(because.rule),
            "" if via is None else ',"via":' + _str(via),
            "}",
        )
    )


def _effect(effect: SideEffect, allow_nan: bool) -> str:
    count = "" if effect.count is None else '"count":' + _value(effect.count, allow_nan) + ","
    return "{" + count + '"kind":' + _str(effect.kind) + ',"text":' + _str(effect.text) + "}"


#: Types of the values a frame may be reused for: they cannot change after it was spelled.
_SCALARS = frozenset({bool, type(None), str, int})

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

"""The fast check of a saved plan's changes: True only for what
schemas/plan.schema.json#/$defs/change accepts (tests/test_saved_plan_integrity.py holds the
two together). jsonschema takes ~0.25 ms per change; this takes a microsecond, and a change
it does not accept goes through jsonschema, whose words are the ones reported.
"""

from __future__ import annotations

from typing import Any

from reconciler.actions import Action
from reconciler.model import ChannelName

__all__ = ["ACTION_NAMES", "CHANNEL_NAMES", "change_ok"]

_CHANGE_KEYS = frozenset(
    {
        "id",
        "action",
        "channel",
        "target",
        "before",
        "after",
        "destructive",
        "execution",
        "depends_on",
        "side_effects",
        "reason",
        "phase",
    }
)
_CHANGE_KEYS_BECAUSE = _CHANGE_KEYS | {"because"}
_THRESHOLD_CHANGE_KEYS = _CHANGE_KEYS_BECAUSE | {"threshold"}
_BECAUSE_KEYS = frozenset({"rule", "name", "line"})
_RULES = frozenset({"include", "orgunit", "group", "exclude", "not_selected", "setting"})
_THRESHOLD_KEYS = frozenset(
    {"rule", "limit", "count", "list_size", "percent", "min_member_removals"}
)
ACTION_NAMES = frozenset(a.value for a in Action)  # = the schema's enums (tests/test_saved_plan_*)
CHANNEL_NAMES = frozenset(c.value for c in ChannelName)
_EXECUTIONS = frozenset({"api", "manual", "local"})
_EFFECT_KEYS = (frozenset({"kind", "text"}), frozenset({"kind", "text", "count"}))


def change_ok(c: Any) -> bool:
    """True only for a change the schema's $defs/change accepts (tests/test_saved_plan_*)."""
    if type(c) is not dict:
        return False
    keys = c.keys()
    if keys != _CHANGE_KEYS_BECAUSE and not (
        keys == _THRESHOLD_CHANGE_KEYS and _threshold_ok(c["threshold"])
    ):
        return keys == _CHANGE_KEYS and _fields_ok(c)  # a plan built in memory: no because
    return _because_ok(c["because"]) and _fields_ok(c)


def _fields_ok(c: dict[str, Any]) -> bool:
    action, channel, execution, target = c["action"], c["channel"], c["execution"], c["target"]
    depends, effects, phase = c["depends_on"], c["side_effects"], c["phase"]
    return (
        type(c["id"]) is str
        and type(action) is str
        and action in ACTION_NAMES
        and type(channel) is str
        and channel in CHANNEL_NAMES
        and (target is None or type(target) is str)
        and type(c["destructive"]) is bool
        and type(execution) is str
        and execution in _EXECUTIONS
        and type(depends) is list
        and all(type(d) is str for d in depends)
        and type(effects) is list
        and all(_effect_ok(e) for e in effects)
        and type(c["reason"]) is str
        and type(phase) is int
        and 1 <= phase <= 7
    )


def _because_ok(b: Any) -> bool:
    if type(b) is not dict or b.keys() != _BECAUSE_KEYS:
        return False
    name, line = b["name"], b["line"]
    return (
        type(b["rule"]) is str
        and b["rule"] in _RULES
        and (name is None or type(name) is str)
        and (line is None or (type(line) is int and line >= 1))
    )


def _threshold_ok(t: Any) -> bool:
    if type(t) is not dict or t.keys() != _THRESHOLD_KEYS:
        return False
    counts = (t["count"], t["list_size"], t["min_member_removals"])
    numbers = (t["limit"], t["percent"])
    return (
        type(t["rule"]) is str
        and t["rule"] in ("max_member_removals", "max_member_removal_percent", "empties_list")
        and all(type(n) is int and n >= 0 for n in counts)
        and all(type(n) in (int, float) and n >= 0 for n in numbers)
    )


def _effect_ok(e: Any) -> bool:
    if type(e) is not dict or e.keys() not in _EFFECT_KEYS:
        return False
    count = e.get("count", 0)
    return type(e["kind"]) is str and type(e["text"]) is str and type(count) is int and count >= 0

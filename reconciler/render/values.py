"""How before/after values read in human output (on/off, quoted greetings, emails)."""

from __future__ import annotations

from typing import Any

from reconciler.actions import Action, Change


def show(value: Any) -> str:
    """One value for humans: booleans as on/off, text quoted on one line."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        one_line = value.replace("\n", "⏎")
        return f"“{one_line[:77]}…”" if len(one_line) > 80 else f"“{one_line}”"
    return str(value)


def describe(change: Change) -> str:
    """`title: before → after`, or the member for member changes."""
    spec = change.spec
    if spec.member_level:
        return f"{spec.title} {change.target}"
    if change.action in (Action.ENABLE_CHANNEL, Action.DISABLE_CHANNEL,
                         Action.GRANT_ALL_MEMBERS, Action.RESTRICT_TO_LISTED_MEMBERS):
        return spec.title
    if change.action is Action.SET_GREETING:
        parts = [f"{key}: {show(change.before.get(key))} → {show(change.after[key])}"
                 for key in change.after]
        return f"{spec.title} " + "; ".join(parts)
    return f"{spec.title}: {show(change.before)} → {show(change.after)}"

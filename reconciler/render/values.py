"""How before/after values read in human output (on/off, quoted greetings, emails)."""

from __future__ import annotations

from typing import Any

from reconciler.actions import Action, Change
from reconciler.terminal import printable


def show(value: Any, limit: int | None = 80) -> str:
    """One value for humans: booleans as on/off, text quoted on one line (clipped at `limit`)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        one_line = printable(value).replace("\n", "⏎")
        if limit is not None and len(one_line) > limit:
            return f"“{one_line[:limit - 3]}…”"
        return f"“{one_line}”"
    return str(value)


def show_setting(setting: str, value: Any) -> str:
    """A drifted setting's value: in full (a clipped greeting could hide the difference);
    the members mode as the bare word the file uses (all, listed)."""
    if setting == "members" and isinstance(value, str):
        return value
    return show(value, limit=None)


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

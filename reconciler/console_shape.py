"""What a change must look like before the console looks at it, and how the console says no.

`RuleRefused` names the rule a change breaks (the names below); the shape checks refuse a
change that could not come from a plan (`malformed`: a member change without an email, a
one-way action stated the other way, a greeting with keys it does not have) whatever the
console's state. reconciler.console applies the rules themselves.
"""

from __future__ import annotations

from typing import Any, NoReturn

from reconciler.actions import ACTIONS, Action, Change
from reconciler.errors import TenantRuleError
from reconciler.i18n import Said
from reconciler.model import ChannelName

__all__ = [
    "ALL_MEMBERS_LIST",
    "ALREADY_LISTED",
    "GREETING_LINE_ONLY",
    "LIST_FROZEN",
    "MALFORMED",
    "MODE_FROZEN",
    "NOT_IN_DIRECTORY",
    "NOT_LISTED",
    "STALE",
    "RuleRefused",
    "fixed_value",
    "greeting_after",
    "member_direction",
    "member_target",
    "refuse",
    "shown",
    "switch_value",
]


class RuleRefused(TenantRuleError):
    """The console refuses one change; `rule` names the rule it breaks."""

    def __init__(self, change_id: str, rule: str, reason: str) -> None:
        self.change_id = change_id
        self.rule = rule
        self.reason = reason
        super().__init__(
            Said.of("change {change} refused: {reason}", change=change_id, reason=reason)
        )


# Rule names, for callers and tests that tell refusals apart.
LIST_FROZEN = "list_frozen"
ALL_MEMBERS_LIST = "all_members_list"
MODE_FROZEN = "mode_frozen"
GREETING_LINE_ONLY = "greeting_line_only"
STALE = "stale"
NOT_IN_DIRECTORY = "not_in_directory"
ALREADY_LISTED = "already_listed"
NOT_LISTED = "not_listed"
MALFORMED = "malformed"


def fixed_value(change: Change, field: str) -> bool:
    """A one-way action's value; a stated `after` must be that direction."""
    fixed = ACTIONS[change.action].fixed_after
    assert fixed is not None  # every one-way action has a direction in the table
    if change.after is not None and change.after is not fixed:
        refuse(
            change,
            MALFORMED,
            Said.of(
                "{action} sets {field} to {fixed}, not {after}",
                action=change.action.value,
                field=field,
                fixed=shown(fixed),
                after=shown(change.after),
            ),
        )
    return fixed


def switch_value(change: Change, field: str) -> bool:
    if not isinstance(change.after, bool):
        said = Said.of(
            "{field} must be set to true or false, not {after}",
            field=field,
            after=shown(change.after),
        )
        refuse(change, MALFORMED, said)
    return change.after


def greeting_after(change: Change) -> dict[str, Any]:
    """`after` holds `enabled` and/or `message`, on the LINE channel only."""
    if change.channel is not ChannelName.LINE:
        refuse(
            change,
            GREETING_LINE_ONLY,
            Said.of("the automatic greeting exists on the LINE channel only"),
        )
    after = change.after
    if not isinstance(after, dict) or not after or not set(after) <= {"enabled", "message"}:
        said = Said.of("set_greeting needs `enabled` and/or `message`, nothing else")
        refuse(change, MALFORMED, said)
    if "enabled" in after and not isinstance(after["enabled"], bool):
        refuse(change, MALFORMED, Said.of("greeting `enabled` must be true or false"))
    if "message" in after and not isinstance(after["message"], str):
        refuse(change, MALFORMED, Said.of("greeting `message` must be text"))
    return after


def member_direction(change: Change) -> bool:
    """True for add_member; `before`/`after`, when stated, must be that move."""
    adding = change.action is Action.ADD_MEMBER
    if change.after not in (None, adding) or change.before not in (None, not adding):
        refuse(
            change,
            MALFORMED,
            Said.of(
                "{action} moves membership from {before} to {after}, not {given_before} to "
                "{given_after}",
                action=change.action.value,
                before=shown(not adding),
                after=shown(adding),
                given_before=shown(change.before),
                given_after=shown(change.after),
            ),
        )
    return adding


def member_target(change: Change) -> str:
    if not change.target or not isinstance(change.target, str):
        said = Said.of("{action} needs a member email as target", action=change.action.value)
        refuse(change, MALFORMED, said)
    return change.target.lower()  # login emails are case-insensitive; kept lower-case


def refuse(change: Change, rule: str, reason: str) -> NoReturn:
    raise RuleRefused(change.id, rule, reason)


def shown(value: object) -> str:
    """A value as it reads in a plan (true/false rather than True/False)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)

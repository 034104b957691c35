"""The console's rules, pure: what each change does to a channel, and what the console refuses.

Every place that must know what a change does uses this module: the local tenant's apply,
the lineworks provider's bookkeeping of what it did, crash recovery's "is this change in
effect already?" and the test emulator's admin. No I/O; states are reconciler.model values.

The rules of the External messaging page:
- a channel's connected-members list can be edited only while the channel is on (off, it
  is frozen as it was), and never in "grant to all members" mode;
- the members mode can be changed only while the channel is on; leaving "all members"
  freezes today's directory into the list, so nobody loses access at that step;
- the automatic greeting exists on the LINE channel only;
- a change that states its `before` must find the tenant in that state.
Where LINE WORKS API 2.0 differs from the console (linking a member, or all members, turns
the channel on), that is the `link_turns_on` flag of `Rules`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from reconciler.actions import ACTIONS, Action, Change
from reconciler.errors import TenantRuleError
from reconciler.model import ChannelName, ChannelState, TenantState


@dataclass(frozen=True)
class Rules:
    """Which console the model plays."""

    #: Refuse what the console refuses (off: only say what a change would do, for
    #: bookkeeping and for "is it in effect already?"). Malformed changes are refused always.
    enforce: bool = True
    #: LINE WORKS API: a member link, or the bulk link, turns the channel on (documented).
    link_turns_on: bool = False


CONSOLE = Rules()
#: What a change that is in effect already leaves unchanged: crash recovery's question.
OBSERVE = Rules(enforce=False)
#: The API's effects, recorded after the call (or the admin's confirmation) succeeded.
LINEWORKS_API = Rules(enforce=False, link_turns_on=True)


class RuleRefused(TenantRuleError):
    """The console refuses one change; `rule` names the rule it breaks."""

    def __init__(self, change_id: str, rule: str, reason: str) -> None:
        self.change_id = change_id
        self.rule = rule
        self.reason = reason
        super().__init__(f"change {change_id} refused: {reason}")


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


@dataclass(frozen=True)
class Effect:
    """What one change sets, whatever the channel holds: the settings it writes (by
    ChannelState attribute), the members it lists or unlists, and whether it freezes the
    directory into the list (leaving "all members")."""

    settings: Mapping[str, Any]
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    freeze: bool = False


def step(state: TenantState, changes: Sequence[Change], rules: Rules = CONSOLE) -> TenantState:
    """The tenant after `changes`, in order, as the console does them; raises RuleRefused.

    A channel the changes leave as it was is returned as the very same ChannelState object,
    so `changes_nothing` costs nothing for big lists. Member changes of one run are checked
    as sets: linear in the run's length and in the list's size.
    """
    channels = dict(state.channels)
    for run in runs(changes):
        first = run[0]
        current = channels.get(first.channel)
        if current is None:
            _refuse(first, MALFORMED, f"the tenant has no {first.channel.value} channel")
        if first.spec.member_level:
            channels[first.channel] = _member_run(current, run, state.directory, rules)
        else:
            channels[first.channel] = _channel_change(current, first, state.directory, rules)
    if all(channels[c] is state.channels[c] for c in channels):
        return state
    return replace(state, channels=channels)


def changes_nothing(state: TenantState, change: Change) -> bool:
    """Whether the tenant has what `change` sets already: applying it would change nothing.

    A malformed change never holds.
    """
    try:
        after = step(state, [change], OBSERVE)
    except RuleRefused:
        return False
    return after is state


def effect(change: Change, rules: Rules = CONSOLE) -> Effect:
    """What `change` sets, checked for shape only (no state, so no console rule)."""
    if change.spec.member_level:
        adding = _member_direction(change)
        target = frozenset({_target(change)})
        if adding:
            return Effect({"enabled": True} if rules.link_turns_on else {}, add=target)
        return Effect({}, remove=target)
    if change.target is not None:
        _refuse(
            change,
            MALFORMED,
            f"{change.action.value} is a channel-level change and takes no target",
        )
    match change.action:
        case Action.ENABLE_CHANNEL | Action.DISABLE_CHANNEL:
            return Effect({"enabled": _fixed(change, "enabled")})
        case Action.GRANT_ALL_MEMBERS:
            value = _fixed(change, "all_members")
            return Effect(
                {"enabled": True, "all_members": value}
                if rules.link_turns_on
                else {"all_members": value}
            )
        case Action.RESTRICT_TO_LISTED_MEMBERS:
            return Effect({"all_members": _fixed(change, "all_members")}, freeze=True)
        case Action.SET_GREETING:
            after = _greeting_after(change)
            return Effect({f"greeting_{key}": value for key, value in after.items()})
        case Action.SET_AUTO_GRANT:
            return Effect({"auto_grant_new_members": _switch(change, "auto_grant_new_members")})
        case Action.SET_FILE_RESTRICTION:
            return Effect({"restrict_file_transfer": _switch(change, "restrict_file_transfer")})
    _refuse(change, MALFORMED, f"{change.action.value} is not a channel-level change")


def runs(changes: Sequence[Change]) -> Iterator[list[Change]]:
    """Consecutive member changes of one action and channel form a run (checked as a set);
    every channel-level change is a run of its own. Order is kept exactly."""
    run: list[Change] = []
    # The run's action and channel while it can grow (a member run), else None: a change
    # of the same action is member-level exactly when the run's first change is.
    growing: tuple[Action, ChannelName] | None = None
    for change in changes:
        if growing is not None and change.action == growing[0] and change.channel == growing[1]:
            run.append(change)
            continue
        if run:
            yield run
        run = [change]
        growing = (change.action, change.channel) if change.spec.member_level else None
    if run:
        yield run


# --------------------------------------------------------------------------- channel level


def _channel_change(
    ch: ChannelState, change: Change, directory: frozenset[str], rules: Rules
) -> ChannelState:
    what = effect(change, rules)
    if rules.enforce:
        _check_rules(ch, change)
    values = dict(what.settings)
    if "all_members" in values and values["all_members"] != ch.all_members:
        # In "all" mode the list is the directory; leaving it keeps today's directory
        # listed (the freeze), so nobody loses access at that step.
        values["members"] = directory
    if all(getattr(ch, key) == value for key, value in values.items()):
        return ch
    return replace(ch, **values)


def _check_rules(ch: ChannelState, change: Change) -> None:
    """The console's refusals of a channel-level change on `ch`."""
    match change.action:
        case Action.ENABLE_CHANNEL | Action.DISABLE_CHANNEL:
            _check_before(
                change, ch.enabled, "enabled", "applied already, or changed since the plan"
            )
        case Action.GRANT_ALL_MEMBERS | Action.RESTRICT_TO_LISTED_MEMBERS:
            if not ch.enabled:
                _refuse(
                    change,
                    MODE_FROZEN,
                    "the members mode can only be changed while the channel is on",
                )
            _check_before(
                change, ch.all_members, "all_members", "applied already, or changed since the plan"
            )
        case Action.SET_GREETING:
            _check_greeting_before(ch, change)
        case Action.SET_AUTO_GRANT:
            _check_before(
                change,
                ch.auto_grant_new_members,
                "auto_grant_new_members",
                "changed since the plan",
            )
        case Action.SET_FILE_RESTRICTION:
            _check_before(
                change,
                ch.restrict_file_transfer,
                "restrict_file_transfer",
                "changed since the plan",
            )


def _fixed(change: Change, field: str) -> bool:
    """A one-way action's value; a stated `after` must be that direction."""
    fixed = ACTIONS[change.action].fixed_after
    assert fixed is not None  # every one-way action has a direction in the table
    if change.after is not None and change.after is not fixed:
        _refuse(
            change,
            MALFORMED,
            f"{change.action.value} sets {field} to {_js(fixed)}, not {_js(change.after)}",
        )
    return fixed


def _switch(change: Change, field: str) -> bool:
    if not isinstance(change.after, bool):
        _refuse(change, MALFORMED, f"{field} must be set to true or false, not {_js(change.after)}")
    return change.after


def _check_before(change: Change, current: bool, field: str, why: str) -> None:
    if change.before is not None and change.before is not current:
        _refuse(
            change,
            STALE,
            f"{field} is {_js(current)} on the tenant but the change "
            f"expects {_js(change.before)} ({why})",
        )


def _greeting_after(change: Change) -> dict[str, Any]:
    """`after` holds `enabled` and/or `message`, on the LINE channel only."""
    if change.channel is not ChannelName.LINE:
        _refuse(
            change, GREETING_LINE_ONLY, "the automatic greeting exists on the LINE channel only"
        )
    after = change.after
    if not isinstance(after, dict) or not after or not set(after) <= {"enabled", "message"}:
        _refuse(change, MALFORMED, "set_greeting needs `enabled` and/or `message`, nothing else")
    if "enabled" in after and not isinstance(after["enabled"], bool):
        _refuse(change, MALFORMED, "greeting `enabled` must be true or false")
    if "message" in after and not isinstance(after["message"], str):
        _refuse(change, MALFORMED, "greeting `message` must be text")
    return after


def _check_greeting_before(ch: ChannelState, change: Change) -> None:
    before = change.before
    if before is None:
        return
    current = {"enabled": ch.greeting_enabled, "message": ch.greeting_message}
    if not isinstance(before, dict) or not set(before) <= set(current):
        _refuse(change, MALFORMED, "set_greeting's `before` may hold only `enabled` and `message`")
    stale = [k for k, v in before.items() if current[k] != v]
    if stale:
        _refuse(
            change,
            STALE,
            f"greeting {', '.join(sorted(stale))} on the tenant differs "
            "from what the change expects (changed since the plan)",
        )


# --------------------------------------------------------------------------- member level


def _member_direction(change: Change) -> bool:
    """True for add_member; `before`/`after`, when stated, must be that move."""
    adding = change.action is Action.ADD_MEMBER
    if change.after not in (None, adding) or change.before not in (None, not adding):
        _refuse(
            change,
            MALFORMED,
            f"{change.action.value} moves membership from "
            f"{_js(not adding)} to {_js(adding)}, not "
            f"{_js(change.before)} to {_js(change.after)}",
        )
    return adding


def _target(change: Change) -> str:
    if not change.target or not isinstance(change.target, str):
        _refuse(change, MALFORMED, f"{change.action.value} needs a member email as target")
    return change.target.lower()  # login emails are case-insensitive; kept lower-case


def _member_run(
    ch: ChannelState, run: list[Change], directory: frozenset[str], rules: Rules
) -> ChannelState:
    """add_member or remove_member for many members of one channel.

    Only the run's own members are looked at (`added`/`dropped` against the old list), so
    the run costs its length plus one set build at the end, never a copy per change.
    """
    first = run[0]
    adding = first.action is Action.ADD_MEMBER
    if rules.enforce:
        if not ch.enabled:
            _refuse(
                first,
                LIST_FROZEN,
                "the connected-members list can only be edited while the channel is on",
            )
        if ch.all_members:
            _refuse(
                first,
                ALL_MEMBERS_LIST,
                "channel is in 'grant to all members' mode; its list cannot be edited "
                "(restrict_to_listed_members first)",
            )
    added: set[str] = set()
    dropped: set[str] = set()
    members, enforce = ch.members, rules.enforce
    # What `effect` says of each change of the run, checked here without building it: the
    # run's changes share the action, so they set the same settings.
    settings: dict[str, Any] = {"enabled": True} if adding and rules.link_turns_on else {}
    moves = (None, adding), (None, not adding)
    for change in run:
        if change.after not in moves[0] or change.before not in moves[1]:
            _member_direction(change)  # refuses, as `effect` would
        email = _target(change)
        listed = email in added or (email in members and email not in dropped)
        if enforce and (listed is adding or email not in directory):
            _check_member(change, email, adding, listed, directory)  # refuses
        # Later changes of the run see this one (a duplicate in the batch is refused).
        if adding and not listed:
            added.add(email)
            dropped.discard(email)
        elif not adding and listed:
            dropped.add(email)
            added.discard(email)
    values: dict[str, Any] = {k: v for k, v in settings.items() if getattr(ch, k) != v}
    added -= ch.members
    dropped &= ch.members
    if added or dropped:
        values["members"] = (ch.members - dropped) | added
    return replace(ch, **values) if values else ch


def _check_member(
    change: Change, email: str, adding: bool, listed: bool, directory: frozenset[str]
) -> None:
    if email not in directory:
        _refuse(change, NOT_IN_DIRECTORY, f"{email} is not in the tenant directory")
    if adding and listed:
        _refuse(change, ALREADY_LISTED, f"{email} is already on the connected-members list")
    if not adding and not listed:
        _refuse(change, NOT_LISTED, f"{email} is not on the connected-members list")


# --------------------------------------------------------------------------- small helpers


def _refuse(change: Change, rule: str, reason: str) -> NoReturn:
    raise RuleRefused(change.id, rule, reason)


def _js(value: object) -> str:
    """A value as it reads in a plan (true/false rather than True/False)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)

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
from typing import Any

from reconciler.actions import Action, Change
from reconciler.console_shape import (
    ALL_MEMBERS_LIST,
    ALREADY_LISTED,
    GREETING_LINE_ONLY,
    LIST_FROZEN,
    MALFORMED,
    MODE_FROZEN,
    NOT_IN_DIRECTORY,
    NOT_LISTED,
    STALE,
    RuleRefused,
    fixed_value,
    greeting_after,
    member_direction,
    member_target,
    refuse,
    shown,
    switch_value,
)
from reconciler.i18n import Said, listing
from reconciler.model import ChannelName, ChannelState, TenantState

# The refusal and its rule names are console_shape's; callers know them as the console's.
__all__ = [
    "ALL_MEMBERS_LIST",
    "ALREADY_LISTED",
    "CONSOLE",
    "GREETING_LINE_ONLY",
    "LINEWORKS_API",
    "LIST_FROZEN",
    "MALFORMED",
    "MODE_FROZEN",
    "NOT_IN_DIRECTORY",
    "NOT_LISTED",
    "OBSERVE",
    "STALE",
    "Effect",
    "RuleRefused",
    "Rules",
    "changes_nothing",
    "effect",
    "runs",
    "step",
]


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
            refuse(
                first,
                MALFORMED,
                Said.of("the tenant has no {channel} channel", channel=first.channel.value),
            )
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
        adding = member_direction(change)
        target = frozenset({member_target(change)})
        if adding:
            return Effect({"enabled": True} if rules.link_turns_on else {}, add=target)
        return Effect({}, remove=target)
    if change.target is not None:
        refuse(
            change,
            MALFORMED,
            Said.of(
                "{action} is a channel-level change and takes no target",
                action=change.action.value,
            ),
        )
    match change.action:
        case Action.ENABLE_CHANNEL | Action.DISABLE_CHANNEL:
            return Effect({"enabled": fixed_value(change, "enabled")})
        case Action.GRANT_ALL_MEMBERS:
            value = fixed_value(change, "all_members")
            return Effect(
                {"enabled": True, "all_members": value}
                if rules.link_turns_on
                else {"all_members": value}
            )
        case Action.RESTRICT_TO_LISTED_MEMBERS:
            return Effect({"all_members": fixed_value(change, "all_members")}, freeze=True)
        case Action.SET_GREETING:
            after = greeting_after(change)
            return Effect({f"greeting_{key}": value for key, value in after.items()})
        case Action.SET_AUTO_GRANT:
            return Effect(
                {"auto_grant_new_members": switch_value(change, "auto_grant_new_members")}
            )
        case Action.SET_FILE_RESTRICTION:
            return Effect(
                {"restrict_file_transfer": switch_value(change, "restrict_file_transfer")}
            )
    said = Said.of("{action} is not a channel-level change", action=change.action.value)
    refuse(change, MALFORMED, said)


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
                change, ch.enabled, "enabled", Said.of("applied already, or changed since the plan")
            )
        case Action.GRANT_ALL_MEMBERS | Action.RESTRICT_TO_LISTED_MEMBERS:
            if not ch.enabled:
                refuse(
                    change,
                    MODE_FROZEN,
                    Said.of("the members mode can only be changed while the channel is on"),
                )
            _check_before(
                change,
                ch.all_members,
                "all_members",
                Said.of("applied already, or changed since the plan"),
            )
        case Action.SET_GREETING:
            _check_greeting_before(ch, change)
        case Action.SET_AUTO_GRANT:
            _check_before(
                change,
                ch.auto_grant_new_members,
                "auto_grant_new_members",
                Said.of("changed since the plan"),
            )
        case Action.SET_FILE_RESTRICTION:
            _check_before(
                change,
                ch.restrict_file_transfer,
                "restrict_file_transfer",
                Said.of("changed since the plan"),
            )


def _check_before(change: Change, current: bool, field: str, why: str) -> None:
    if change.before is not None and change.before is not current:
        refuse(
            change,
            STALE,
            Said.of(
                "{field} is {current} on the tenant but the change expects {before} ({why})",
                field=field,
                current=shown(current),
                before=shown(change.before),
                why=why,
            ),
        )


def _check_greeting_before(ch: ChannelState, change: Change) -> None:
    before = change.before
    if before is None:
        return
    current = {"enabled": ch.greeting_enabled, "message": ch.greeting_message}
    if not isinstance(before, dict) or not set(before) <= set(current):
        said = Said.of("set_greeting's `before` may hold only `enabled` and `message`")
        refuse(change, MALFORMED, said)
    stale = [k for k, v in before.items() if current[k] != v]
    if stale:
        refuse(
            change,
            STALE,
            Said.of(
                "greeting {fields} on the tenant differs from what the change expects "
                "(changed since the plan)",
                fields=listing(sorted(stale)),
            ),
        )


# --------------------------------------------------------------------------- member level


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
            refuse(
                first,
                LIST_FROZEN,
                Said.of("the connected-members list can only be edited while the channel is on"),
            )
        if ch.all_members:
            refuse(
                first,
                ALL_MEMBERS_LIST,
                Said.of(
                    "channel is in 'grant to all members' mode; its list cannot be edited "
                    "(restrict_to_listed_members first)"
                ),
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
            member_direction(change)  # refuses, as `effect` would
        email = member_target(change)
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
        refuse(
            change, NOT_IN_DIRECTORY, Said.of("{email} is not in the tenant directory", email=email)
        )
    if adding and listed:
        said = Said.of("{email} is already on the connected-members list", email=email)
        refuse(change, ALREADY_LISTED, said)
    if not adding and not listed:
        refuse(
            change, NOT_LISTED, Said.of("{email} is not on the connected-members list", email=email)
        )


# --------------------------------------------------------------------------- small helpers

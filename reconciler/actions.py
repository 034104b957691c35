"""THE table of change kinds: each action's rank, phase, marker, the setting it moves,
its safety class and side effects (the settings themselves are reconciler.settings' rows).

Sorting changes by `order_key` *is* docs/contract.md#order; nothing else orders changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import cached_property
from typing import Any, Literal, cast

from reconciler import side_effects as effects_of
from reconciler.i18n import ENGLISH, N_, Messages
from reconciler.model import Because, ChannelName
from reconciler.settings import (
    AUTO_GRANT,
    ENABLED,
    FILE_RESTRICTION,
    GREETING_ENABLED,
    GREETING_MESSAGE,
    MEMBERS_MODE,
    Setting,
)
from reconciler.side_effects import SideEffect

Execution = Literal["api", "manual", "local"]
Value = Any  # JSON-compatible: bool, str, None or a small dict


class Action(StrEnum):
    """The nine things a plan can do to the page."""

    ENABLE_CHANNEL = "enable_channel"
    DISABLE_CHANNEL = "disable_channel"
    ADD_MEMBER = "add_member"
    REMOVE_MEMBER = "remove_member"
    GRANT_ALL_MEMBERS = "grant_all_members"
    RESTRICT_TO_LISTED_MEMBERS = "restrict_to_listed_members"
    SET_GREETING = "set_greeting"
    SET_AUTO_GRANT = "set_auto_grant"
    SET_FILE_RESTRICTION = "set_file_restriction"


class Phase(IntEnum):
    """Tighten before loosen, the destructive step last: never a looser moment than old or new."""

    ENABLE = 1
    TIGHTEN = 2
    REMOVE = 3
    ADD = 4
    GREETING = 5
    LOOSEN = 6
    DISABLE = 7

    @property
    def title(self) -> str:
        """The heading a plan's changes of this phase are listed under."""
        return PHASE_TITLES[self]


PHASE_TITLES = {
    Phase.ENABLE: N_("enable channels"),
    Phase.TIGHTEN: N_("tighten (restrictions on, auto-grant off, list mode)"),
    Phase.REMOVE: N_("remove members"),
    Phase.ADD: N_("add members"),
    Phase.GREETING: N_("greeting"),
    Phase.LOOSEN: N_("loosen (restrictions off, auto-grant on)"),
    Phase.DISABLE: N_("disable channels"),
}


#: The two safety keys, and `empties_list`: selectors that select nobody would empty a list
#: that has members (a reorganisation, a renamed unit), which only --allow-destructive lifts.
ThresholdRule = Literal["max_member_removals", "max_member_removal_percent", "empties_list"]


@dataclass(frozen=True, slots=True)
class Threshold:
    """The safety threshold a channel's member removals cross, with the numbers.

    Carried by each removal over it (schemas/plan.schema.json#/$defs/threshold): the safety
    gate and a reviewer of a saved plan read it, and the plan keeps no list sizes elsewhere.
    """

    rule: ThresholdRule  # the safety key that fires
    limit: int | float  # that key's value: a member count, or a percentage
    count: int  # members the plan removes from the channel's list
    list_size: int  # members on the list before (the directory when leaving "all" mode)
    percent: float  # count as a percentage of list_size
    min_member_removals: int  # at or below this count the percentage rule never fires

    def describe(self, t: Messages = ENGLISH) -> str:
        """`60 of 100 listed (60.0 %) is more than 50 members (safety.max_member_removals)`."""
        numbers = t._(
            "{count} of {size} listed ({percent:.1f} %)",
            count=self.count,
            size=self.list_size,
            percent=self.percent,
        )
        if self.rule == "empties_list":
            return t._(
                "{numbers}: the file's selectors select nobody now, which would empty the list",
                numbers=numbers,
            )
        if self.rule == "max_member_removals":
            return t.n_(
                "{numbers} is more than {n} member (safety.{rule})",
                "{numbers} is more than {n} members (safety.{rule})",
                int(self.limit),
                numbers=numbers,
                rule=self.rule,
            )
        share = f"{self.limit:g} %"  # a field: "% o" in a message id reads as %-format
        return t.n_(
            "{numbers} is more than {share} of the list (safety.{rule}) and more than {n} member",
            "{numbers} is more than {share} of the list (safety.{rule}) and more than {n} members",
            self.min_member_removals,
            numbers=numbers,
            share=share,
            rule=self.rule,
        )

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/plan.schema.json#/$defs/threshold)."""
        return {
            "rule": self.rule,
            "limit": self.limit,
            "count": self.count,
            "list_size": self.list_size,
            "percent": self.percent,
            "min_member_removals": self.min_member_removals,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Threshold:
        """Inverse of `to_json` (a saved plan's change, already schema-checked)."""
        return cls(
            data["rule"],
            data["limit"],
            data["count"],
            data["list_size"],
            data["percent"],
            data["min_member_removals"],
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change, as in docs/contract.md#the-plan."""

    id: str
    action: Action
    channel: ChannelName
    target: str | None
    before: Value
    after: Value
    destructive: bool = False
    execution: Execution = "local"
    depends_on: tuple[str, ...] = ()
    side_effects: tuple[SideEffect, ...] = field(default=(), compare=False)
    reason: str = ""
    # Set on a removal over the safety threshold (it is then destructive), else None.
    threshold: Threshold | None = None
    # Why: the file's entry or setting behind the change and its line (None: built in memory).
    because: Because | None = None

    @property
    def spec(self) -> ActionSpec:
        """The table row for this change's action."""
        return ACTIONS[self.action]

    @property
    def phase(self) -> Phase:
        """Where this change runs in the seven-phase order."""
        return self.spec.phase_of(self.after)

    def to_json(self) -> dict[str, Any]:
        """The documented machine form (schemas/plan.schema.json#/$defs/change)."""
        document = {
            "id": self.id,
            "action": self.action.value,
            "channel": self.channel.value,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "destructive": self.destructive,
            "execution": self.execution,
            "depends_on": list(self.depends_on),
            "side_effects": [s.to_json() for s in self.side_effects],
            "reason": self.reason,
            "phase": int(self.phase),
        }
        if self.threshold is not None:  # only on removals over it: other changes read as before
            document["threshold"] = self.threshold.to_json()
        if self.because is not None:
            document["because"] = self.because.to_json()
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        """Inverse of `to_json` (a saved plan's change)."""
        return cls(
            id=data["id"],
            action=Action(data["action"]),
            channel=ChannelName(data["channel"]),
            target=data["target"],
            before=data["before"],
            after=data["after"],
            destructive=bool(data["destructive"]),
            execution=data["execution"],
            depends_on=tuple(data["depends_on"]),
            side_effects=tuple(
                SideEffect(s["kind"], s["text"], s.get("count")) for s in data["side_effects"]
            ),
            reason=data.get("reason", ""),
            threshold=Threshold.from_json(data["threshold"]) if "threshold" in data else None,
            because=Because(**data["because"]) if "because" in data else None,
        )


Marker = Literal["+", "-", "~"]
SummaryBucket = Literal["add", "change", "remove"]


@dataclass(frozen=True)
class ActionSpec:
    """Everything about one kind of change, in one place.

    What follows from the row is derived, not spelled again: the summary's bucket from the
    marker, whether values are shown from `fixed_after`, member-level from `moves`, and the
    side effects are the function of reconciler.side_effects named as the action.
    """

    action: Action
    # Order within a phase (after channel-level before member-level): data, not row position.
    rank: int
    title: str
    marker: Marker  # + adds, - removes, ~ changes: the summary's bucket too
    phase: Phase
    # The settings the action moves, in console order; () for member changes (they move
    # the list, ChannelState.members).
    moves: tuple[Setting, ...]
    # The value a one-way action always moves its setting to (enable → True, remove → False);
    # None for switches, whose `after` says the direction.
    fixed_after: bool | None
    always_destructive: bool = False

    @cached_property
    def bucket(self) -> SummaryBucket:
        """Which count of the plan's summary a change of this kind is in (by its marker)."""
        return _BUCKETS[self.marker]

    @cached_property
    def shows_values(self) -> bool:
        """Whether human output shows `before → after`: a switch's; a one-way action's title
        says it all."""
        return self.fixed_after is None

    @cached_property
    def member_level(self) -> bool:
        """One change per member (its target is an email): the actions that move the list."""
        return not self.moves

    @cached_property
    def effects(self) -> Callable[[effects_of.EffectContext], list[SideEffect]]:
        """What a change of this kind does besides its setting (reconciler.side_effects)."""
        return cast(
            Callable[[effects_of.EffectContext], list[SideEffect]],
            getattr(effects_of, self.action.value),
        )

    @property
    def phase_title(self) -> str:
        """The heading this action's changes are listed under (of its fixed phase)."""
        return self.phase.title

    @cached_property  # asked for every change's phase: 800,000 times in a 100k-change apply
    def tight_value(self) -> bool | None:
        """For a switch that can tighten or loosen, the `after` value that tightens."""
        if len(self.moves) != 1 or self.fixed_after is not None:
            return None
        return self.moves[0].tight

    def phase_of(self, after: Value) -> Phase:
        """The phase of a change of this kind that moves the setting to `after`: a switch
        runs in TIGHTEN when it moves to its tight value and in LOOSEN otherwise."""
        if self.tight_value is None:
            return self.phase
        return Phase.TIGHTEN if after == self.tight_value else Phase.LOOSEN


_BUCKETS: dict[Marker, SummaryBucket] = {"+": "add", "-": "remove", "~": "change"}


def _spec(*rows: ActionSpec) -> dict[Action, ActionSpec]:
    missing = [r.action.value for r in rows if not callable(getattr(effects_of, r.action.value, 0))]
    if missing:  # a programming error: fail at import, not at the first plan that needs it
        raise TypeError(f"reconciler.side_effects has no function for {missing}")
    return {row.action: row for row in sorted(rows, key=lambda row: row.rank)}


ACTIONS: dict[Action, ActionSpec] = _spec(
    # action, rank, title, marker, phase, the settings it moves, fixed_after
    ActionSpec(
        Action.ENABLE_CHANNEL, 1, N_("turn channel on"), "+", Phase.ENABLE, (ENABLED,), True
    ),
    ActionSpec(
        Action.RESTRICT_TO_LISTED_MEMBERS,
        2,
        N_("restrict to listed members"),
        "~",
        Phase.TIGHTEN,
        (MEMBERS_MODE,),
        False,
    ),
    ActionSpec(
        Action.SET_FILE_RESTRICTION,
        3,
        N_("restrict file transfer"),
        "~",
        Phase.TIGHTEN,
        (FILE_RESTRICTION,),
        None,
    ),
    ActionSpec(
        Action.SET_AUTO_GRANT,
        4,
        N_("auto-grant new members"),
        "~",
        Phase.TIGHTEN,
        (AUTO_GRANT,),
        None,
    ),
    ActionSpec(Action.REMOVE_MEMBER, 5, N_("remove member"), "-", Phase.REMOVE, (), False),
    ActionSpec(
        Action.GRANT_ALL_MEMBERS,
        6,
        N_("grant to all members"),
        "+",
        Phase.ADD,
        (MEMBERS_MODE,),
        True,
    ),
    ActionSpec(Action.ADD_MEMBER, 7, N_("add member"), "+", Phase.ADD, (), True),
    # Moves both greeting settings; its before/after are {enabled?, message?} dicts.
    ActionSpec(
        Action.SET_GREETING,
        8,
        N_("automatic greeting"),
        "~",
        Phase.GREETING,
        (GREETING_ENABLED, GREETING_MESSAGE),
        None,
    ),
    ActionSpec(
        Action.DISABLE_CHANNEL,
        9,
        N_("turn channel off"),
        "-",
        Phase.DISABLE,
        (ENABLED,),
        False,
        always_destructive=True,
    ),
)
#: The switches the planner compares value to value: one action each, both directions.
SWITCHES: tuple[tuple[Setting, Action], ...] = tuple(
    (spec.moves[0], spec.action) for spec in ACTIONS.values() if spec.tight_value is not None
)

# Within a phase: channel-level changes before member-level ones, then console order.
_CHANNEL_RANK = {channel: rank for rank, channel in enumerate(ChannelName)}
_RANK = {action: spec.rank for action, spec in ACTIONS.items()}  # one lookup per change


def order_key(change: Change) -> tuple[int, int, int, str]:
    """Sort key implementing docs/contract.md#order; stable and total for a plan's changes."""
    return (
        int(change.phase),
        _CHANNEL_RANK[change.channel],
        _RANK[change.action],
        change.target or "",
    )


def change_id(action: Action, channel: ChannelName, target: str | None = None) -> str:
    """Deterministic id: the same change gets the same id in every plan (journal resume)."""
    # Both are StrEnums, so their text is their value: joined directly, without the Enum
    # `value` property (Python code, read twice for each of 100k changes).
    return "/".join((channel, action, target)) if target else "/".join((channel, action))

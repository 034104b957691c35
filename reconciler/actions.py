"""THE table of change kinds: each action's phase, marker, safety class and side effects.

Sorting changes by `order_key` *is* docs/contract.md#order; nothing else orders changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal

from reconciler import side_effects as fx
from reconciler.model import ChannelName
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
        return {
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
        )


Marker = Literal["+", "-", "~"]
SummaryBucket = Literal["add", "change", "remove"]


@dataclass(frozen=True)
class ActionSpec:
    """Everything about one kind of change, in one place."""

    action: Action
    title: str
    marker: Marker
    bucket: SummaryBucket
    phase: Phase
    # For a switch that can tighten or loosen, the `after` value that tightens; the change
    # runs in TIGHTEN when it moves to that value and in LOOSEN otherwise.
    tight_value: bool | None = None
    always_destructive: bool = False
    # The value a one-way action always moves its setting to (enable → True, remove → False);
    # None for switches whose `after` says the direction.
    fixed_after: bool | None = None
    member_level: bool = False  # one change per member (target is an email)
    effects: Callable[[fx.EffectContext], list[SideEffect]] = fx.none

    def phase_of(self, after: Value) -> Phase:
        """The phase of a change of this kind that moves the setting to `after`."""
        if self.tight_value is None:
            return self.phase
        return Phase.TIGHTEN if after == self.tight_value else Phase.LOOSEN


def _spec(*rows: ActionSpec) -> dict[Action, ActionSpec]:
    return {row.action: row for row in rows}


ACTIONS: dict[Action, ActionSpec] = _spec(
    ActionSpec(Action.ENABLE_CHANNEL, "turn channel on", "+", "add", Phase.ENABLE,
               fixed_after=True, effects=fx.enable_channel),
    ActionSpec(Action.RESTRICT_TO_LISTED_MEMBERS, "restrict to listed members", "~", "change",
               Phase.TIGHTEN, fixed_after=False, effects=fx.restrict_to_listed_members),
    ActionSpec(Action.SET_FILE_RESTRICTION, "restrict file transfer", "~", "change",
               Phase.TIGHTEN, tight_value=True, effects=fx.set_file_restriction),
    ActionSpec(Action.SET_AUTO_GRANT, "auto-grant new members", "~", "change",
               Phase.TIGHTEN, tight_value=False, effects=fx.set_auto_grant),
    ActionSpec(Action.REMOVE_MEMBER, "remove member", "-", "remove", Phase.REMOVE,
               member_level=True, fixed_after=False, effects=fx.remove_member),
    ActionSpec(Action.GRANT_ALL_MEMBERS, "grant to all members", "+", "add", Phase.ADD,
               fixed_after=True, effects=fx.grant_all_members),
    ActionSpec(Action.ADD_MEMBER, "add member", "+", "add", Phase.ADD,
               member_level=True, fixed_after=True, effects=fx.add_member),
    ActionSpec(Action.SET_GREETING, "automatic greeting", "~", "change", Phase.GREETING,
               effects=fx.set_greeting),
    ActionSpec(Action.DISABLE_CHANNEL, "turn channel off", "-", "remove", Phase.DISABLE,
               always_destructive=True, fixed_after=False, effects=fx.disable_channel),
)

# Within a phase: channel-level changes before member-level ones, then console order.
_RANK = {action: rank for rank, action in enumerate(ACTIONS)}
_CHANNEL_RANK = {channel: rank for rank, channel in enumerate(ChannelName)}


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
    base = f"{channel.value}/{action.value}"
    return f"{base}/{target}" if target else base

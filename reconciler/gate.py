"""The safety gate: what apply refuses in a plan, and the flag or file change that lifts it.

The one place that decides. `Gate.of` reads a plan's destructive changes and its `safety:`
block; `lwr plan`, `show-plan --tenant` and `apply` all ask the same gate, and the text,
markdown and JSON renderers only show its verdict (docs/contract.md#safety-thresholds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.actions import Action, Change, Threshold
from reconciler.errors import DestructiveRefused
from reconciler.i18n import ENGLISH, Messages, Told
from reconciler.model import ChannelName, SafetySettings

Verdict = Literal["ok", "needs_allow_destructive", "refused"]
FLAG = "--allow-destructive"


@dataclass(frozen=True)
class Blocker:
    """Destructive changes of one kind on one channel: what apply needs to let them through.

    `protected`: the channel is in safety.protect_channels, so no flag lets them through.
    `file_change`: for removals over a threshold, the smallest safety values under which they
    are no longer destructive (the way out without the flag); empty for turning a channel off.
    """

    channel: ChannelName
    action: Action
    changes: int
    first: str  # id of the first change it covers
    protected: bool
    threshold: Threshold | None = None
    file_change: tuple[tuple[str, int | float], ...] = ()

    def what(self, t: Messages = ENGLISH) -> str:
        """One line: the change and why it is destructive, with the numbers."""
        if self.action is Action.DISABLE_CHANNEL:
            return t._(
                "{first}: turning {channel} off hides its rooms from members "
                "and shows them as 'unknown' to external users",
                first=self.first,
                channel=self.channel,
            )
        over = self.threshold.describe(t) if self.threshold else t._("over the safety threshold")
        return t._(
            "{channel}: removing {count} members exceeds the safety threshold: {over}",
            channel=self.channel,
            count=self.changes,
            over=over,
        )

    def file_words(self, t: Messages = ENGLISH) -> str:
        """`max_member_removals: 3` (and the percentage): the file change instead of the flag."""
        return t._(" and ").join(f"{key}: {value:g}" for key, value in self.file_change)

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/plan.schema.json#/$defs/blocker)."""
        return {
            "channel": self.channel.value,
            "action": self.action.value,
            "changes": self.changes,
            "first": self.first,
            "protected": self.protected,
            # What lets it through: the flag (none on a protected channel), or this file change.
            "flag": None if self.protected else FLAG,
            "file_change": dict(self.file_change),
            "threshold": self.threshold.to_json() if self.threshold else None,
        }


@dataclass(frozen=True)
class Gate:
    """The verdict on one plan: every blocker, and where its `safety:` block is."""

    blockers: tuple[Blocker, ...]
    source: str = ""

    @classmethod
    def of(cls, changes: Sequence[Change], safety: SafetySettings, source: str = "") -> Gate:
        """The gate of a plan's `changes` under its `safety` settings."""
        destructive = [c for c in changes if c.destructive]
        blockers = [
            Blocker(c.channel, c.action, 1, c.id, c.channel in safety.protect_channels)
            for c in destructive
            if c.action is Action.DISABLE_CHANNEL
        ]
        removals: dict[ChannelName, list[Change]] = {}
        for c in destructive:
            if c.action is Action.REMOVE_MEMBER:
                removals.setdefault(c.channel, []).append(c)
        for channel, mine in removals.items():
            over = mine[0].threshold
            blockers.append(
                Blocker(
                    channel,
                    Action.REMOVE_MEMBER,
                    len(mine),
                    mine[0].id,
                    channel in safety.protect_channels,
                    over,
                    _file_change(len(mine), over, safety),
                )
            )
        return cls(tuple(blockers), source)

    @property
    def verdict(self) -> Verdict:
        """`refused` whatever the flags; `needs_allow_destructive`; or `ok`."""
        if any(b.protected for b in self.blockers):
            return "refused"
        return "needs_allow_destructive" if self.blockers else "ok"

    @property
    def protected(self) -> tuple[Blocker, ...]:
        """The blockers no flag lifts."""
        return tuple(b for b in self.blockers if b.protected)

    @property
    def unprotected(self) -> tuple[Blocker, ...]:
        """The blockers --allow-destructive lifts."""
        return tuple(b for b in self.blockers if not b.protected)

    def where(self, t: Messages = ENGLISH) -> str:
        """The desired-state file, for 'in the `safety:` block of …'."""
        return self.source or t._("the desired-state file")

    def advice(self, t: Messages = ENGLISH) -> list[str]:
        """What a reviewer reads at the foot of a plan: the verdict, each blocker, the way out.

        Empty when apply needs nothing; the first line is the verdict. In `t`'s language.
        """
        if self.verdict == "refused":
            rule = ", ".join(sorted({b.channel.value for b in self.protected}))
            return [
                t._(
                    "Apply will refuse this plan: {channels} is in safety.protect_channels, "
                    "which {flag} cannot override:",
                    channels=rule,
                    flag=FLAG,
                ),
                *self._protected_body(t),
            ]
        if not self.blockers:
            return []
        count = sum(b.changes for b in self.blockers)
        head = t.n_(
            "Apply needs {flag}: {n} destructive change:",
            "Apply needs {flag}: {n} destructive changes:",
            count,
            flag=FLAG,
        )
        return [head, *self._destructive_body(t)]

    def refusal(self, *, allow_destructive: bool) -> DestructiveRefused | None:
        """The refusal apply raises with these flags (exit 3), or None when it may go on;
        its message is said again in the reader's language (i18n.Told)."""
        if self.verdict == "refused":
            return DestructiveRefused(Told(self._protected_refusal))
        if not self.blockers or allow_destructive:
            return None
        return DestructiveRefused(Told(self._destructive_refusal))

    def _protected_refusal(self, t: Messages) -> str:
        head = t._(
            "refused: the plan has destructive changes on a channel listed in "
            "safety.protect_channels, which {flag} cannot override:",
            flag=FLAG,
        )
        return "\n".join([head, *self._protected_body(t)])

    def _destructive_refusal(self, t: Messages) -> str:
        head = t._("refused: the plan has destructive changes and {flag} was not given:", flag=FLAG)
        tail = t._("Review them, then pass {flag} (or make the file change shown).", flag=FLAG)
        return "\n".join([head, *self._destructive_body(t), tail])

    def _protected_body(self, t: Messages = ENGLISH) -> list[str]:
        lines = [
            *(f"  - {b.what(t)}" for b in self.protected),
            t._(
                "A protected channel is changed this way only after removing it from "
                "protect_channels in the `safety:` block of {where}, in a reviewed change.",
                where=self.where(t),
            ),
        ]
        others = self.unprotected
        if others:  # said now, not after the protected channel is dealt with
            lines += [
                t._("Besides, apply needs {flag} for:", flag=FLAG),
                *self._destructive_body(t, others),
            ]
        return lines

    def _destructive_body(
        self, t: Messages = ENGLISH, blockers: Sequence[Blocker] | None = None
    ) -> list[str]:
        lines = []
        for b in self.blockers if blockers is None else blockers:
            lines.append(f"  - {b.what(t)}")
            if b.file_change:
                lines.append(
                    t._(
                        "    or, without {flag}: set {settings} in the `safety:` block of {where}",
                        flag=FLAG,
                        settings=b.file_words(t),
                        where=self.where(t),
                    )
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/plan.schema.json#/$defs/gate): what apply needs, as data."""
        return {"verdict": self.verdict, "blockers": [b.to_json() for b in self.blockers]}


def removal_threshold(
    removals: int, list_size: int, safety: SafetySettings, *, emptied_by_selectors: bool = False
) -> Threshold | None:
    """The rule that makes `removals` of a `list_size` list destructive, with numbers; or None.

    `emptied_by_selectors`: the file's selectors select nobody and every member would go.
    That is destructive whatever the thresholds say (a reorganisation or a renamed org unit
    is rarely meant to cut a channel off), so no `safety:` value lifts it, only the flag.
    """
    s = safety
    percent = 100.0 * removals / list_size if list_size else 0.0
    if emptied_by_selectors and removals and removals == list_size:
        return Threshold("empties_list", 0, removals, list_size, percent, s.min_member_removals)
    if removals > s.max_member_removals:
        return Threshold(
            "max_member_removals",
            s.max_member_removals,
            removals,
            list_size,
            percent,
            s.min_member_removals,
        )
    if removals > s.min_member_removals and percent > s.max_member_removal_percent:
        return Threshold(
            "max_member_removal_percent",
            s.max_member_removal_percent,
            removals,
            list_size,
            percent,
            s.min_member_removals,
        )
    return None


def _file_change(
    removals: int, over: Threshold | None, safety: SafetySettings
) -> tuple[tuple[str, int | float], ...]:
    """The least safety values under which `removals` cross no threshold (planner's rule)."""
    if over is None or over.rule == "empties_list":  # no safety value lifts that one
        return ()
    needed: list[tuple[str, int | float]] = []
    if removals > safety.max_member_removals:
        needed.append(("max_member_removals", removals))
    if removals > safety.min_member_removals and over.percent > safety.max_member_removal_percent:
        # Rounded up to one decimal: the rule fires above the value, so this one passes.
        needed.append(("max_member_removal_percent", math.ceil(over.percent * 10) / 10))
    return tuple(needed)

"""diff(desired, current) → ordered changes and warnings. Pure: no I/O, no clock.

Members are compared as sets, so a 100k-member list costs two set differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.actions import (
    ACTIONS,
    SWITCHES,
    Action,
    ActionSpec,
    Change,
    Execution,
    Threshold,
    change_id,
    order_key,
)
from reconciler.errors import InputError, Problem
from reconciler.gate import removal_threshold
from reconciler.i18n import Msg, Said
from reconciler.model import (
    Because,
    ChannelName,
    ChannelState,
    DesiredChannel,
    DesiredState,
    MembersSpec,
    Rule,
    SafetySettings,
    TenantState,
)
from reconciler.settings import AUTO_GRANT, Setting
from reconciler.side_effects import EffectContext, SideEffect
from reconciler.words import onoff

ExecutionOf = Callable[[Action], Execution]


def _local(action: Action) -> Execution:
    return "local"


@dataclass(frozen=True)
class Diff:
    """The planner's answer: changes in execution order, and what the admin should know."""

    changes: tuple[Change, ...]
    warnings: tuple[str, ...]


@dataclass
class _ChannelPlanner:
    """Diffs one channel; collects changes and warnings (one instance per channel, per run)."""

    channel: ChannelName
    desired: DesiredState
    have: ChannelState
    directory: frozenset[str]
    safety: SafetySettings
    execution: ExecutionOf

    def __post_init__(self) -> None:
        self.want: DesiredChannel = self.desired.channels[self.channel]
        self._name = self.channel.value  # asked for each change's line: the property once
        self.changes: list[Change] = []
        self._channel_level: list[Change] = []
        # member-level effects depend only on (action, room count): see side_effects.py
        self._member_effects: dict[tuple[Action, int], tuple[SideEffect, ...]] = {}
        self.warnings: list[str] = []

    def run(self) -> None:
        if self.want.enabled is False:
            if self.have.enabled:
                self._change(
                    Action.DISABLE_CHANNEL,
                    True,
                    False,
                    "the file turns the channel off",
                    self._setting("enabled"),
                    destructive=True,
                )
            return  # a channel that is off has nothing else to manage
        if self.want.enabled is True and not self.have.enabled:
            self._change(
                Action.ENABLE_CHANNEL,
                False,
                True,
                "the file turns the channel on",
                self._setting("enabled"),
            )
        for setting, action in SWITCHES:
            self._switch(action, setting)
        self._greeting()
        self._members()
        self._warn_empty_selectors()
        self._warn_auto_grant_drift()

    def _because(self, rule: Rule, name: str | None) -> Because:
        return Because(rule, name, self.desired.lines.line(self._name, rule, name))

    def _why_removed(self, want: MembersSpec, email: str, unselected: Because) -> Because:
        """Excluded; else `left` the org unit or group that had them at the last apply (its
        line, or the members key's once the file dropped it); else not selected."""
        if email in want.exclude:
            return self._because(*want.why_not(email))
        left = want.left(email) if want.previous else None
        if left is None:
            return unselected
        rule, name = left
        line = self.desired.lines.line(self._name, rule, name) or unselected.line
        return Because("left", name, line, via=rule)

    def _setting(self, key: str) -> Because:
        """Why a channel-level change: the setting's key and the line it is written on."""
        return self._because("setting", key)

    @property
    def _will_be_on(self) -> bool:
        return self.want.enabled is True or (self.want.enabled is None and self.have.enabled)

    def _change(
        self,
        action: Action,
        before: object,
        after: object,
        reason: str,
        because: Because,
        *,
        target: str | None = None,
        destructive: bool = False,
        threshold: Threshold | None = None,
    ) -> None:
        spec = ACTIONS[action]
        phase = spec.phase_of(after)
        # Channel-level changes are all made before member-level ones, so this is complete.
        needs = (
            tuple(c.id for c in self._channel_level if c.phase < phase)
            if self._channel_level
            else ()
        )
        change = Change(
            id=change_id(action, self.channel, target),
            action=action,
            channel=self.channel,
            target=target,
            before=before,
            after=after,
            destructive=destructive or spec.always_destructive,
            execution=self.execution(action),
            depends_on=needs,
            side_effects=self._effects(spec, target, before, after),
            reason=reason,
            threshold=threshold,
            because=because,
        )
        self.changes.append(change)
        if not spec.member_level:
            self._channel_level.append(change)

    def _effects(
        self, spec: ActionSpec, target: str | None, before: object, after: object
    ) -> tuple[SideEffect, ...]:
        rooms = self.have.open_rooms.get(target, 0) if target else 0
        memo_key = (spec.action, rooms)
        if spec.member_level and memo_key in self._member_effects:
            return self._member_effects[memo_key]
        ctx = EffectContext(self.channel, target, before, after, self.have, len(self.directory))
        effects = tuple(spec.effects(ctx))
        if spec.member_level:
            self._member_effects[memo_key] = effects
        return effects

    def _switch(self, action: Action, setting: Setting) -> None:
        want, have = setting.wanted(self.want), setting.current(self.have)
        if want is not None and want != have:
            self._change(
                action,
                have,
                want,
                f"{setting.key} is {onoff(have)}, the file says {onoff(want)}",
                self._setting(setting.key),
            )

    def _greeting(self) -> None:
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        for setting in ACTIONS[Action.SET_GREETING].moves:  # enabled, message
            want, have = setting.wanted(self.want), setting.current(self.have)
            if want is not None and want != have:
                name = setting.key.rpartition(".")[2]
                before[name], after[name] = have, want
        if after:
            self._change(
                Action.SET_GREETING,
                before,
                after,
                "the greeting differs in " + " and ".join(after),
                self._setting("greeting." + next(iter(after))),
            )

    def _members(self) -> None:
        want = self.want.members
        if want is None:
            return
        if want.all_members:
            if not self.have.all_members:
                self._require_on("grant to all members")
                self._change(
                    Action.GRANT_ALL_MEMBERS,
                    False,
                    True,
                    "the file says members: all",
                    self._setting("members"),
                )
            return
        listed = self.have.members
        if self.have.all_members:
            self._require_on("restrict to listed members")
            self._change(
                Action.RESTRICT_TO_LISTED_MEMBERS,
                True,
                False,
                "the file lists members; the channel grants all members",
                self._setting("members"),
            )
            listed = self.directory  # the console freezes today's members into the list
        wanted = want.wanted
        to_add = wanted - listed
        to_remove = listed - wanted if want.policy == "exact" else frozenset()
        if want.policy == "additive" and (extra := len(listed - wanted)):
            self.warnings.append(
                Said(
                    Msg.counted(
                        "{channel}: {n} member on the list is not in the file; "
                        "policy additive keeps them",
                        "{channel}: {n} members on the list are not in the file; "
                        "policy additive keeps them",
                        extra,
                        channel=self.channel.value,
                    )
                )
            )
        if to_add or to_remove:
            self._require_on("change the connected-members list")
        over = removal_threshold(
            len(to_remove),
            len(listed),
            self.safety,
            emptied_by_selectors=want.uses_selectors and not wanted,
        )
        reason = "not in the file (policy exact)"
        if over:  # the words for reviewers; the gate reads `threshold`
            reason += f"; over the safety threshold: {over.describe()}"
        unselected = self._because("not_selected", None)  # one for every such removal
        for email in sorted(to_remove):
            self._change(
                Action.REMOVE_MEMBER,
                True,
                False,
                reason,
                self._why_removed(want, email, unselected),
                target=email,
                destructive=over is not None,
                threshold=over,
            )
        for email in sorted(to_add):
            self._change(
                Action.ADD_MEMBER,
                False,
                True,
                "in the file, not on the list",
                self._because(*want.why_listed(email)),
                target=email,
            )

    def _require_on(self, what: str) -> None:
        if not self._will_be_on:
            where = ("external_messaging", self.channel.value, "members")
            line, column = self.desired.locate(where) if self.desired.locate else (0, 0)
            raise InputError(
                [
                    Problem(
                        file=self.desired.source,
                        line=line,
                        column=column,
                        path=".".join(where),
                        message=f"cannot {what}: the {self.channel} channel is off and the file "
                        "does not turn it on (the list can only change while the channel is on)",
                        hint=f"add `enabled: true` under external_messaging.{self.channel}",
                    )
                ]
            )

    def _warn_empty_selectors(self) -> None:
        """A unit or group that selects nobody: most often a reorganisation the file missed."""
        members = self.want.members
        for rule, name, chosen in members.selected if members is not None else ():
            if chosen:
                continue
            line = self.desired.lines.line(self.channel.value, rule, name)
            self.warnings.append(
                Said(
                    Msg.of(
                        "{channel}: {key} {name} ({where}) selects nobody in the directory; "
                        "if it was reorganised, name the units or groups that replace it",
                        channel=self.channel.value,
                        key="include_orgunits" if rule == "orgunit" else "include_groups",
                        name=name,
                        where=f"{self.desired.source}:{line}" if line else self.desired.source,
                    )
                )
            )

    def _warn_auto_grant_drift(self) -> None:
        auto = AUTO_GRANT.wanted(self.want)
        auto_on = auto if auto is not None else AUTO_GRANT.current(self.have)
        members = self.want.members
        if auto_on and members is not None and members.uses_selectors:
            self.warnings.append(
                Said(
                    Msg.of(
                        "{channel}: {key} is on with member selectors: auto-grant adds every "
                        "new hire, whatever their org unit or group, while the selectors add "
                        "exactly the new members of the units and groups they name at the "
                        "next apply (and remove the others); turn auto-grant off",
                        channel=self.channel.value,
                        key=AUTO_GRANT.key,
                    )
                )
            )
            return
        if (
            auto_on
            and members is not None
            and not members.all_members
            and members.policy == "exact"
        ):
            self.warnings.append(
                Said(
                    Msg.of(
                        "{channel}: {key} is on with an exact member list: every new hire is "
                        "added automatically and will drift from the list (the next plan "
                        "proposes removing them); turn auto-grant off or use policy: additive",
                        channel=self.channel.value,
                        key=AUTO_GRANT.key,
                    )
                )
            )


def diff(desired: DesiredState, current: TenantState, execution: ExecutionOf = _local) -> Diff:
    """Plan the ordered changes that bring `current` to `desired` (docs/contract.md#the-plan)."""
    changes: list[Change] = []
    warnings: list[str] = []
    for channel in ChannelName:
        if channel not in desired.channels:
            continue  # unmanaged channel: never read into the plan, never changed
        planner = _ChannelPlanner(
            channel,
            desired,
            current.channels[channel],
            current.directory,
            desired.safety,
            execution,
        )
        planner.run()
        changes.extend(planner.changes)
        warnings.extend(planner.warnings)
    changes.sort(key=order_key)
    return Diff(tuple(changes), tuple(warnings))

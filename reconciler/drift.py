"""Drift: where a tenant differs from its desired file, setting by setting (`lwr drift`).

Read off the plan made from the same file and tenant: each change says which setting differs
(the table's row for its action) and both values, and the member changes are the missing and
unexpected members. So drift and plan cannot disagree, and nothing is compared twice.
DeepDiff is not used: every setting is a flat value the planner already compares, and a
generic differ would only re-derive, more slowly, what the plan's changes already say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from reconciler import __version__
from reconciler.actions import Action, Change
from reconciler.model import ChannelName, DesiredState, TenantState
from reconciler.plan import Plan
from reconciler.selection import Churn
from reconciler.settings import SETTINGS
from reconciler.words import utc_now

# The drift report's own format (schemas/drift.schema.json); the saved plan's is plan.py's.
FORMAT_VERSION = "1.0"

# The managed settings in the order reports list them (the console's order).
_ORDER = {s.key: n for n, s in enumerate(SETTINGS)}
_CHANNEL_ORDER = {c: n for n, c in enumerate(ChannelName)}


@dataclass(frozen=True)
class SettingDrift:
    """One managed setting whose tenant value differs from the file's."""

    channel: ChannelName
    setting: str  # dotted, e.g. greeting.message; `members` is the mode: all or listed
    desired: Any
    current: Any

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/drift.schema.json#/$defs/setting)."""
        return _fields_json(self)


@dataclass(frozen=True)
class MemberDrift:
    """A managed member list that differs: who is missing from it, who should not be on it."""

    channel: ChannelName
    policy: str  # exact | additive
    desired_count: int
    current_count: int
    missing: tuple[str, ...]  # in the file, not on the tenant's list (sorted)
    unexpected: tuple[str, ...]  # on the list, not in the file; always () with additive

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/drift.schema.json#/$defs/members)."""
        return _fields_json(self)


def _fields_json(record: SettingDrift | MemberDrift) -> dict[str, Any]:
    """A drift record's fields in their order, the channel by name and tuples as lists."""
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, ChannelName):
        return value.value
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DriftReport:
    """Every drifted setting and list of one desired file against one tenant."""

    tenant: str
    tenant_uri: str
    source: str
    desired_digest: str
    state_digest: str
    checked_at: str
    settings: tuple[SettingDrift, ...]
    members: tuple[MemberDrift, ...]
    changes: int  # the changes a plan would make to bring the tenant back
    warnings: tuple[str, ...] = ()
    #: Where the tenant's API contradicts lwr's attested state (`--verify-links`); each is
    #: among the warnings too.
    contradicted: tuple[str, ...] = ()
    #: Directory churn per channel and selector since the last apply (reconciler.selection);
    #: None when no apply of this file's selectors was recorded: nothing is said of churn.
    selection: tuple[tuple[ChannelName, Churn], ...] | None = None

    @property
    def in_sync(self) -> bool:
        """True when the tenant has every managed setting and list as the file says (and no
        read contradicts what lwr holds as attested)."""
        return not self.settings and not self.members and not self.contradicted

    def channels(self) -> tuple[ChannelName, ...]:
        """The channels with drift, in console order."""
        drifted = {d.channel for d in self.settings} | {m.channel for m in self.members}
        drifted |= {channel for channel, _ in self.selection or ()}
        return tuple(c for c in ChannelName if c in drifted)

    def summary(self) -> dict[str, int]:
        """Counts a reviewer reads first."""
        return {
            "settings": len(self.settings),
            "members_missing": sum(len(m.missing) for m in self.members),
            "members_unexpected": sum(len(m.unexpected) for m in self.members),
            "changes": self.changes,
        }

    def to_json(self) -> dict[str, Any]:
        """The drift report document (schemas/drift.schema.json)."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": "drift",
            "tool_version": __version__,
            "tenant": self.tenant,
            "tenant_uri": self.tenant_uri,
            "source": self.source,
            "checked_at": self.checked_at,
            "desired_digest": self.desired_digest,
            "state_digest": self.state_digest,
            "in_sync": self.in_sync,
            "summary": self.summary(),
            "settings": [d.to_json() for d in self.settings],
            "members": [m.to_json() for m in self.members],
            "warnings": list(self.warnings),
            **({} if self.selection is None else {"selection": self._selection_json()}),
        }

    def _selection_json(self) -> list[dict[str, Any]]:
        return [{"channel": c.value, **churn.to_json()} for c, churn in self.selection or ()]


def drift_report(
    desired: DesiredState,
    current: TenantState,
    plan: Plan,
    contradicted: tuple[str, ...] = (),
) -> DriftReport:
    """What `desired` manages that `current` has otherwise; `plan` is the plan made from both;
    `contradicted`: what the tenant's reads contradict of the attested state."""
    members = []
    for channel in ChannelName:
        want = desired.channels.get(channel)
        if want is None or want.members is None or want.members.all_members:
            continue  # unmanaged, or `all`: the mode setting says everything
        changes = [c for c in plan.changes if c.channel is channel and c.spec.member_level]
        if changes:
            have = current.channels[channel]
            # In "all members" mode the console freezes today's directory into the list:
            # the planner compared with that, and so does the count.
            listed = current.directory if have.all_members else have.members
            members.append(
                _member_drift(
                    channel, want.members.policy, len(want.members.wanted), len(listed), changes
                )
            )
    return DriftReport(
        tenant=current.domain,
        tenant_uri=plan.tenant_uri,
        source=desired.source,
        desired_digest=desired.digest,
        state_digest=plan.state_digest,
        checked_at=utc_now("seconds"),
        settings=setting_drift(plan.changes),
        members=tuple(members),
        changes=len(plan.changes),
        warnings=plan.warnings + contradicted,
        contradicted=contradicted,
        selection=selection_churn(desired) if desired.uses_selectors else None,
    )


def selection_churn(desired: DesiredState) -> tuple[tuple[ChannelName, Churn], ...] | None:
    """Who joined and left each selector since the last apply, per channel in console order;
    None when no channel's selection was recorded."""
    from reconciler.selection import churn, selection_of

    found: list[tuple[ChannelName, Churn]] = []
    recorded = False
    for channel in ChannelName:
        spec = desired.channels.get(channel)
        members = spec.members if spec is not None else None
        if members is None or not members.previous:
            continue
        recorded = True
        previous = {(rule, name): who for rule, name, who in members.previous}
        found += [(channel, c) for c in churn(previous, selection_of(members))]
    return tuple(found) if recorded else None


def setting_drift(changes: Sequence[Change]) -> tuple[SettingDrift, ...]:
    """The settings `changes` move, with file and tenant values, in console order."""
    found = []
    for change in changes:
        spec = change.spec
        if spec.member_level:
            continue
        if change.action is Action.SET_GREETING:  # one change for both greeting settings
            found += [
                SettingDrift(
                    change.channel, f"greeting.{name}", change.after[name], change.before.get(name)
                )
                for name in change.after
            ]
            continue
        setting = spec.moves[0]
        found.append(
            SettingDrift(
                change.channel,
                setting.key,
                setting.spell(change.after),
                setting.spell(change.before),
            )
        )
    return tuple(sorted(found, key=lambda d: (_CHANNEL_ORDER[d.channel], _ORDER[d.setting])))


def _member_drift(
    channel: ChannelName,
    policy: str,
    desired_count: int,
    current_count: int,
    changes: Sequence[Change],
) -> MemberDrift:
    """The member changes of one channel as who is missing and who is unexpected."""
    missing = sorted(c.target or "" for c in changes if c.action is Action.ADD_MEMBER)
    unexpected = sorted(c.target or "" for c in changes if c.action is Action.REMOVE_MEMBER)
    return MemberDrift(
        channel, policy, desired_count, current_count, tuple(missing), tuple(unexpected)
    )

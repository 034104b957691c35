"""Drift: where a tenant differs from its desired file, setting by setting (`lwr drift`).

Managed settings are compared as small dicts with deepdiff; member lists with set algebra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deepdiff import DeepDiff

from reconciler import __version__
from reconciler.model import ChannelName, ChannelState, DesiredChannel, DesiredState, TenantState
from reconciler.plan import Plan

# The drift report's own format (schemas/drift.schema.json); the saved plan's is plan.py's.
FORMAT_VERSION = "1.0"

# The managed settings in the order reports list them (the console's order).
SETTING_ORDER = ("enabled", "auto_grant_new_members", "restrict_file_transfer",
                 "greeting.enabled", "greeting.message", "members")


@dataclass(frozen=True)
class SettingDrift:
    """One managed setting whose tenant value differs from the file's."""

    channel: ChannelName
    setting: str  # dotted, e.g. greeting.message; `members` is the mode: all or listed
    desired: Any
    current: Any

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/drift.schema.json#/$defs/setting)."""
        return {"channel": self.channel.value, "setting": self.setting,
                "desired": self.desired, "current": self.current}


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
        return {"channel": self.channel.value, "policy": self.policy,
                "desired_count": self.desired_count, "current_count": self.current_count,
                "missing": list(self.missing), "unexpected": list(self.unexpected)}


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

    @property
    def in_sync(self) -> bool:
        """True when the tenant has every managed setting and list as the file says."""
        return not self.settings and not self.members

    def channels(self) -> tuple[ChannelName, ...]:
        """The channels with drift, in console order."""
        drifted = {d.channel for d in self.settings} | {m.channel for m in self.members}
        return tuple(c for c in ChannelName if c in drifted)

    def summary(self) -> dict[str, int]:
        """Counts a reviewer reads first."""
        return {"settings": len(self.settings),
                "members_missing": sum(len(m.missing) for m in self.members),
                "members_unexpected": sum(len(m.unexpected) for m in self.members),
                "changes": self.changes}

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
        }


def drift_report(desired: DesiredState, current: TenantState, plan: Plan) -> DriftReport:
    """Compare what `desired` manages with `current`; `plan` is the plan made from both."""
    settings: list[SettingDrift] = []
    members: list[MemberDrift] = []
    for channel in ChannelName:
        want = desired.channels.get(channel)
        if want is None:
            continue  # unmanaged: not read into the report either
        have = current.channels[channel]
        settings += setting_drift(channel, want, have)
        listed = member_drift(channel, want, have, current.directory)
        if listed is not None:
            members.append(listed)
    return DriftReport(
        tenant=current.domain, tenant_uri=plan.tenant_uri, source=desired.source,
        desired_digest=desired.digest, state_digest=plan.state_digest,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        settings=tuple(settings), members=tuple(members), changes=len(plan.changes),
        warnings=plan.warnings)


def setting_drift(channel: ChannelName, want: DesiredChannel,
                  have: ChannelState) -> list[SettingDrift]:
    """The managed settings of one channel whose values differ, in SETTING_ORDER."""
    desired = _desired_settings(want)
    current = _current_settings(have, desired)
    found = []
    for items in DeepDiff(current, desired, view="tree").values():
        for level in items:
            path = ".".join(str(p) for p in level.path(output_format="list"))
            found.append(SettingDrift(channel, path, level.t2, level.t1))
    return sorted(found, key=lambda d: SETTING_ORDER.index(d.setting))


def member_drift(channel: ChannelName, want: DesiredChannel, have: ChannelState,
                 directory: frozenset[str]) -> MemberDrift | None:
    """Who is missing from, or unexpected on, a listed channel; None when it matches."""
    spec = want.members
    if spec is None or spec.all_members:
        return None  # unmanaged, or `all`: the mode setting says everything
    # In "all members" mode the console freezes today's directory into the list: compare
    # with that, as the planner does.
    listed = directory if have.all_members else have.members
    missing = spec.include - listed
    unexpected = listed - spec.include if spec.policy == "exact" else frozenset()
    if not missing and not unexpected:
        return None
    return MemberDrift(channel, spec.policy, len(spec.include), len(listed),
                       tuple(sorted(missing)), tuple(sorted(unexpected)))


def _desired_settings(want: DesiredChannel) -> dict[str, Any]:
    """The settings the file manages, and only those (a key left out is unmanaged)."""
    out: dict[str, Any] = {}
    for key in ("enabled", "auto_grant_new_members", "restrict_file_transfer"):
        if (value := getattr(want, key)) is not None:
            out[key] = value
    if want.greeting is not None:
        greeting = {k: v for k, v in (("enabled", want.greeting.enabled),
                                      ("message", want.greeting.message)) if v is not None}
        if greeting:
            out["greeting"] = greeting
    if want.members is not None:
        out["members"] = "all" if want.members.all_members else "listed"
    return out


def _current_settings(have: ChannelState, keys: Mapping[str, Any]) -> dict[str, Any]:
    """The tenant's values of exactly the keys in `keys`."""
    values: dict[str, Any] = {
        "enabled": have.enabled,
        "auto_grant_new_members": have.auto_grant_new_members,
        "restrict_file_transfer": have.restrict_file_transfer,
        "members": "all" if have.all_members else "listed",
    }
    out = {key: values[key] for key in keys if key != "greeting"}
    if "greeting" in keys:
        greeting = {"enabled": have.greeting_enabled, "message": have.greeting_message}
        out["greeting"] = {key: greeting[key] for key in keys["greeting"]}
    return out


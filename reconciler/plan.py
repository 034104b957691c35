"""The Plan: ordered changes plus the digests that pin it to a file and a tenant state.

Owns the safety gate (`raise_if_unsafe`), the summary, and the saved-plan JSON form.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.actions import Action, Change
from reconciler.errors import DestructiveRefused, InputError, Problem
from reconciler.model import ChannelName, DesiredState, SafetySettings, TenantState
from reconciler.planner import Diff, ExecutionOf, diff

# Minor = additive (readers accept any 1.x), major = reject (readers refuse 2.x).
FORMAT_VERSION = "1.0"


@dataclass(frozen=True)
class Plan:
    """A plan as shown, saved and applied."""

    tenant: str  # the tenant's domain
    tenant_uri: str  # where it was read from (provider key)
    desired_digest: str
    state_digest: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    safety: SafetySettings = field(default_factory=SafetySettings)
    source: str = ""
    created_at: str = ""
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION

    @property
    def destructive(self) -> tuple[Change, ...]:
        """The changes that need --allow-destructive."""
        return tuple(c for c in self.changes if c.destructive)

    @property
    def digest(self) -> str:
        """Identity of this plan's content (what the journal records as applied)."""
        h = hashlib.sha256()
        h.update(f"{self.tenant_uri}\n{self.desired_digest}\n{self.state_digest}\n".encode())
        for change in self.changes:
            h.update(f"{change.id}\t{_canon(change.after)}\n".encode())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Counts by kind: the line a reviewer reads first."""
        buckets = Counter(c.spec.bucket for c in self.changes)
        return {
            "total": len(self.changes),
            "add": buckets["add"],
            "change": buckets["change"],
            "remove": buckets["remove"],
            "destructive": sum(1 for c in self.changes if c.destructive),
            "manual": sum(1 for c in self.changes if c.execution == "manual"),
            "by_action": dict(sorted(Counter(c.action.value for c in self.changes).items())),
        }

    def raise_if_unsafe(self, *, allow_destructive: bool) -> None:
        """Refuse (exit 3) what the safety rules forbid; say the numbers and the way out."""
        protected = [c for c in self.changes if c.action is Action.DISABLE_CHANNEL
                     and c.channel in self.safety.protect_channels]
        if protected:
            names = ", ".join(c.channel.value for c in protected)
            raise DestructiveRefused(
                f"refused: the plan turns off {names}, listed in safety.protect_channels; "
                "a protected channel can never be turned off by this file (remove it from "
                "protect_channels first, in a reviewed change)")
        if allow_destructive or not self.destructive:
            return
        raise DestructiveRefused("refused: the plan has destructive changes and "
                                 "--allow-destructive was not given:\n"
                                 + "\n".join(f"  - {line}" for line in self._why_destructive()))

    def _why_destructive(self) -> list[str]:
        lines = []
        for c in self.changes:
            if c.action is Action.DISABLE_CHANNEL:
                lines.append(f"{c.id}: turning {c.channel} off hides its rooms from members "
                             "and shows them as 'unknown' to external users")
        removals = Counter(c.channel for c in self.changes
                           if c.action is Action.REMOVE_MEMBER and c.destructive)
        s = self.safety
        for channel, count in removals.items():
            lines.append(
                f"{channel}: removing {count} members exceeds the safety threshold (more than "
                f"{s.max_member_removals} members, or more than {s.max_member_removal_percent:g} "
                f"% of the list and more than {s.min_member_removals} members); raise "
                "safety.max_member_removals / max_member_removal_percent in the file, or pass "
                "--allow-destructive")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The saved-plan document (schemas/plan.schema.json)."""
        return {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "tenant": self.tenant,
            "tenant_uri": self.tenant_uri,
            "source": self.source,
            "created_at": self.created_at,
            "desired_digest": self.desired_digest,
            "state_digest": self.state_digest,
            "plan_digest": self.digest,
            "safety": {
                "max_member_removals": self.safety.max_member_removals,
                "max_member_removal_percent": self.safety.max_member_removal_percent,
                "protect_channels": sorted(c.value for c in self.safety.protect_channels),
            },
            "changes": [c.to_json() for c in self.changes],
            "warnings": list(self.warnings),
            "summary": self.summary(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "<plan>") -> Plan:
        """Read a saved plan; refuse a future major format version."""
        version = str(data.get("format_version", ""))
        if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
            raise InputError([Problem(source, 0, 0, "format_version",
                                      f"unsupported plan format_version {version!r}",
                                      f"this lwr reads {FORMAT_VERSION.split('.')[0]}.x plans")])
        safety = data.get("safety", {})
        return cls(
            tenant=data["tenant"],
            tenant_uri=data["tenant_uri"],
            desired_digest=data["desired_digest"],
            state_digest=data["state_digest"],
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            warnings=tuple(data.get("warnings", ())),
            safety=SafetySettings(
                max_member_removals=safety.get("max_member_removals", 50),
                max_member_removal_percent=safety.get("max_member_removal_percent", 20.0),
                protect_channels=frozenset(ChannelName(c)
                                           for c in safety.get("protect_channels", ())),
            ),
            source=data.get("source", ""),
            created_at=data.get("created_at", ""),
            tool_version=data.get("tool_version", ""),
            format_version=version,
        )


def make_plan(desired: DesiredState, current: TenantState, tenant_uri: str,
              execution: ExecutionOf | None = None) -> Plan:
    """Diff `desired` against `current` and pin the result to both."""
    result: Diff = diff(desired, current, execution) if execution else diff(desired, current)
    return Plan(
        tenant=current.domain,
        tenant_uri=tenant_uri,
        desired_digest=desired.digest,
        state_digest=state_digest(current),
        changes=result.changes,
        warnings=result.warnings,
        safety=desired.safety,
        source=desired.source,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def state_digest(state: TenantState) -> str:
    """Digest of what a plan depends on: directory and every setting and list.

    Room counts are left out on purpose: a customer's new message must not make a
    reviewed plan stale, while a new hire or a changed list must.
    """
    h = hashlib.sha256()
    h.update(f"domain={state.domain}\n".encode())
    h.update("\n".join(sorted(state.directory)).encode())
    for name in sorted(state.channels):
        ch = state.channels[name]
        h.update(_canon({
            "channel": name.value, "enabled": ch.enabled, "all_members": ch.all_members,
            "auto_grant": ch.auto_grant_new_members, "restrict": ch.restrict_file_transfer,
            "greeting_enabled": ch.greeting_enabled, "greeting_message": ch.greeting_message,
        }).encode())
        h.update(_members_digest_text(ch.members, state.directory).encode())
    return h.hexdigest()


def _members_digest_text(members: frozenset[str], directory: frozenset[str]) -> str:
    """A list as its smaller side: the members, or the directory members not on it.

    Either determines the list once the directory is hashed, and sorting the smaller side
    keeps a 100k-member digest to one big sort (the directory) instead of three.
    """
    if len(members) > len(directory) // 2 and members <= directory:
        return "-" + "\n".join(sorted(directory - members))
    return "+" + "\n".join(sorted(members))


def _canon(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

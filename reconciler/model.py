"""The state model: what a file asks for (DesiredState) and what a tenant has (TenantState).

Frozen dataclasses only; members are frozensets so diffs are set algebra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from reconciler.i18n import N_


class ChannelName(StrEnum):
    """The two channels of the External messaging page, in console order."""

    LINE = "line"  # "Chat with LINE users"
    LINEWORKS = "lineworks"  # "Chat with LINE WORKS users from other companies"

    @property
    def label(self) -> str:
        """The console's name for the channel."""
        return CHANNEL_LABELS[self]

    @property
    def external(self) -> str:
        """Who is on the other side of the channel's rooms."""
        return "LINE users" if self is ChannelName.LINE else "external LINE WORKS users"


CHANNEL_LABELS = {  # N_: in English here, in the reader's language where shown
    ChannelName.LINE: N_("Chat with LINE users"),
    ChannelName.LINEWORKS: N_("Chat with LINE WORKS users from other companies"),
}

MemberPolicy = Literal["exact", "additive"]


@dataclass(frozen=True)
class MembersSpec:
    """Desired connected members: `all`, or a list that is exact or additive."""

    all_members: bool
    policy: MemberPolicy = "exact"
    include: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GreetingSpec:
    """Desired automatic greeting (LINE channel only); None fields are unmanaged."""

    enabled: bool | None = None
    message: str | None = None


@dataclass(frozen=True)
class DesiredChannel:
    """What the file says about one channel. None means the key was left out: unmanaged."""

    enabled: bool | None = None
    auto_grant_new_members: bool | None = None
    restrict_file_transfer: bool | None = None
    greeting: GreetingSpec | None = None
    members: MembersSpec | None = None


@dataclass(frozen=True)
class SafetySettings:
    """Thresholds for the destructive-change gate (defaults: docs/contract.md#safety-thresholds)."""

    max_member_removals: int = 50
    max_member_removal_percent: float = 20.0
    min_member_removals: int = 5  # below or at this count, the percentage rule never fires
    protect_channels: frozenset[ChannelName] = frozenset()


@dataclass(frozen=True)
class DesiredState:
    """A validated desired-state file."""

    version: int
    tenant: str
    channels: Mapping[ChannelName, DesiredChannel]
    safety: SafetySettings = field(default_factory=SafetySettings)
    source: str = "<memory>"
    digest: str = ""  # sha256 of the file's bytes
    # Where a path such as ("external_messaging", "line", "members", "include", 3) is written
    # in the file, as 1-based (line, column); None when the state was not read from a file.
    locate: Callable[[tuple[str | int, ...]], tuple[int, int]] | None = field(
        default=None, compare=False, repr=False
    )
    # The file as parsed (YAML data, before any normalising): what `target: desired` policy
    # rules are evaluated against. None when the state was not read from a file.
    document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ChannelState:
    """One channel as the tenant has it now."""

    enabled: bool
    all_members: bool  # "grant to all members" mode
    members: frozenset[str]  # connected-members list; the whole directory in all mode
    auto_grant_new_members: bool
    restrict_file_transfer: bool
    greeting_enabled: bool | None = None  # None on the lineworks channel (no greeting there)
    greeting_message: str | None = None
    # Visible rooms with external users, per member: the data behind side-effect counts.
    open_rooms: Mapping[str, int] = field(default_factory=dict)

    @property
    def open_room_total(self) -> int:
        """All rooms with external users still shown in members' room lists."""
        return sum(self.open_rooms.values())


@dataclass(frozen=True)
class TenantState:
    """The whole page as read from one tenant."""

    domain: str
    directory: frozenset[str]  # every member's login email
    channels: Mapping[ChannelName, ChannelState]

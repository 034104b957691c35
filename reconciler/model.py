"""The state model: what a file asks for (DesiredState) and what a tenant has (TenantState).

Frozen dataclasses only; members are frozensets so diffs are set algebra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal, Protocol

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


#: What put a change into a plan: a member entry of the file (`include`, `exclude`), a
#: selector (`orgunit`, `group`), a member no entry selects (`not_selected`; `left` when the
#: last apply's selection had them: they left that org unit or group), or a setting.
Rule = Literal["include", "orgunit", "group", "exclude", "not_selected", "left", "setting"]
SelectorRule = Literal["orgunit", "group"]


@dataclass(frozen=True, slots=True)
class Because:
    """Why a change is in the plan: the rule, the entry as written (a member, an org unit, a
    group, a setting's key; None for `not_selected`) and its line in the plan's source file
    (None when the desired state was not read from a file)."""

    rule: Rule
    name: str | None = None
    line: int | None = None
    via: SelectorRule | None = None  # `left`: what `name` is, an org unit or a group

    def to_json(self) -> dict[str, Any]:
        """Machine form (schemas/plan.schema.json#/$defs/because)."""
        document: dict[str, Any] = {"rule": self.rule, "name": self.name, "line": self.line}
        if self.via is not None:
            document["via"] = self.via
        return document


class SourceLines(Protocol):
    """Where the file writes what a change can be traced to (reconciler.sourcelines)."""

    def line(self, channel: str, rule: Rule, name: str | None) -> int | None:
        """The line of an entry (`include` … `exclude`: the entry as `Because.name` has it),
        of a setting's key (`setting`: its key under the channel, e.g. `greeting.message`),
        or of the channel's `members` key (`not_selected`); None when unknown."""
        ...


class NoLines:
    """A desired state built in memory: no file, no lines."""

    def line(self, channel: str, rule: Rule, name: str | None) -> int | None:
        """Always None."""
        return None


NO_LINES = NoLines()


@dataclass(frozen=True)
class MembersSpec:
    """Desired connected members: `all`, or a list that is exact or additive.

    A list is `include` plus the members of the org units and groups it selects, minus
    `exclude` (docs/departments.md). Selectors are names as written; `selected` holds what
    each selected once resolved against the tenant's org chart (reconciler.selectors), in
    the file's order; until then it is empty.
    """

    all_members: bool
    policy: MemberPolicy = "exact"
    include: frozenset[str] = frozenset()
    include_orgunits: tuple[str, ...] = ()
    include_groups: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    selected: tuple[tuple[SelectorRule, str, frozenset[str]], ...] = ()
    #: What each selector selected at the last apply (reconciler.selection), when known.
    previous: tuple[tuple[SelectorRule, str, frozenset[str]], ...] = ()

    @property
    def uses_selectors(self) -> bool:
        """Whether the list names org units or groups (the org chart must then be read)."""
        return bool(self.include_orgunits or self.include_groups)

    @cached_property
    def wanted(self) -> frozenset[str]:
        """The effective list: include, plus every selected member, minus exclude."""
        if not self.selected and not self.exclude:
            return self.include  # a plain list: no copy of 100k members
        return self.include.union(*(members for _, _, members in self.selected)) - self.exclude

    def why_listed(self, email: str) -> tuple[Rule, str]:
        """The first entry that puts `email` on the list: include, then selectors in order."""
        if email in self.include:
            return "include", email
        for rule, name, members in self.selected:
            if email in members:
                return rule, name
        return "include", email  # not reached for a member of `wanted`

    def why_not(self, email: str) -> tuple[Rule, str | None]:
        """Why `email` is not on the list: excluded, or selected by no entry."""
        return ("exclude", email) if email in self.exclude else ("not_selected", None)

    def left(self, email: str) -> tuple[SelectorRule, str] | None:
        """The selector that had `email` at the last apply and no longer does, if any."""
        for rule, name, members in self.previous:
            if email in members:
                return rule, name
        return None


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
    # Where each entry and setting key is written, for the plan's `because` (found in one
    # pass when the file is read; a saved plan's rebuilt state takes them from its changes).
    lines: SourceLines = field(default=NO_LINES, compare=False, repr=False)

    @property
    def uses_selectors(self) -> bool:
        """Whether any channel's list names org units or groups."""
        return any(
            c.members is not None and c.members.uses_selectors for c in self.channels.values()
        )


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

"""THE table of console settings: one row per switch of the External messaging page.

Each row names a setting once for every reader: its key in a desired-state file, its
attribute on the model (ChannelState), its key in the state digest, the console's label and
on/off words, the console default, the tight (safe) value and the channels that have it. The
planner, drift, export, the state digest, `lwr show`, the manual checklist and the lineworks
provider's defaults all read these rows. Adding a switch is one row here, one property in
schemas/desired-state.schema.json and one mapping per provider (the local tenant's is the
row's `local_column`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.model import ChannelName, ChannelState, DesiredChannel, MembersSpec

BOTH = frozenset(ChannelName)


@dataclass(frozen=True)
class Setting:
    """One console setting of one channel."""

    key: str  # in the desired-state file, under external_messaging.<channel>; dotted if nested
    label: str  # the console's name for it (English console)
    on: str | None  # the console's word for True; None for a text setting
    off: str | None
    default: bool | str  # what a new tenant has
    # The safe value (restriction on, auto-grant off, listed members); None if neither is.
    tight: bool | None
    channels: frozenset[ChannelName] = BOTH
    # How files and reports spell True and False instead of true/false (members: all).
    words: tuple[str, str] | None = None
    # The names below are the key with "_" for "." unless a row spells them otherwise.
    attr: str = ""  # the ChannelState field
    # Its key in state_digest: saved plans carry the digest, so these never change spelling.
    digest_key: str = ""  # the attr unless spelled
    #: The mapping of the local tenant (providers/local): its column in the `channels` table.
    local_column: str = ""  # the attr unless spelled

    def __post_init__(self) -> None:
        # Frozen: the derived names are set once, here, and read like any other field.
        attr = self.attr or self.key.replace(".", "_")
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "digest_key", self.digest_key or attr)
        object.__setattr__(self, "local_column", self.local_column or attr)

    def current(self, state: ChannelState) -> Any:
        """The tenant's value, as files and reports spell it."""
        return self.spell(getattr(state, self.attr))

    def wanted(self, want: DesiredChannel) -> Any:
        """The value the file asks for, as files and reports spell it; None when unmanaged."""
        value: Any = want
        for part in self.key.split("."):
            value = getattr(value, part)
            if value is None:
                return None
        if isinstance(value, MembersSpec):
            value = value.all_members
        return self.spell(value)

    def spell(self, value: Any) -> Any:
        """`value` in the words files and reports use (all / listed for the members mode)."""
        if self.words is None or not isinstance(value, bool):
            return value
        return self.words[0] if value else self.words[1]

    def console_word(self, value: bool) -> str:
        """What the console shows for `value` (On, Not use, Grant by member …)."""
        if self.on is None or self.off is None:  # a programming error, not a user's
            raise TypeError(f"{self.key} is a text setting: it has no on/off words")
        return self.on if value else self.off


LINE_ONLY = frozenset({ChannelName.LINE})

ENABLED = Setting("enabled", "Use status", "Use", "Not use", default=False, tight=None)
AUTO_GRANT = Setting(
    "auto_grant_new_members",
    "Automatically grant link authority to new members",
    "On",
    "Off",
    default=False,
    tight=False,
    digest_key="auto_grant",
    local_column="auto_grant",
)
FILE_RESTRICTION = Setting(
    "restrict_file_transfer",
    "Restrict file transfer/attachment",
    "On",
    "Off",
    default=False,
    tight=True,
    digest_key="restrict",
)
GREETING = "Automatic greeting message"  # the console's one label for both greeting settings
GREETING_ENABLED = Setting(
    "greeting.enabled", GREETING, "On", "Off", default=False, tight=None, channels=LINE_ONLY
)
GREETING_MESSAGE = Setting(
    "greeting.message", GREETING, None, None, default="", tight=None, channels=LINE_ONLY
)
# The members *mode*; the list itself is ChannelState.members, compared as sets.
MEMBERS_MODE = Setting(
    "members",
    "Permissions",
    "Grant to all members",
    "Grant by member",
    default=False,
    tight=False,
    words=("all", "listed"),
    attr="all_members",
)

#: In the console's order, which is the order reports list them in.
SETTINGS: tuple[Setting, ...] = (
    ENABLED,
    AUTO_GRANT,
    FILE_RESTRICTION,
    GREETING_ENABLED,
    GREETING_MESSAGE,
    MEMBERS_MODE,
)
#: The plain on/off switches, each moved both ways by one action, in console order.
TOGGLES = tuple(s for s in SETTINGS if s.tight is not None and s.words is None)
#: The console's label for the connected-members list (member changes).
MEMBER_LIST_LABEL = "Connected-members > Manage"


def values(
    channel: ChannelName,
    state: ChannelState,
    skip: tuple[Setting, ...] = (),
    *,
    defaults: bool = False,
) -> dict[str, Any]:
    """The channel's settings (but `skip`) keyed as in a desired file, nested by dotted key:
    `{"auto_grant_new_members": False, "greeting": {"enabled": True, "message": "…"}}`;
    with `defaults`, a value the tenant does not have (None) reads as the console default."""
    out: dict[str, Any] = {}
    for setting in of(channel):
        if setting in skip:
            continue
        value = setting.current(state)
        if value is None and defaults:
            value = setting.default
        parent, _, name = setting.key.rpartition(".")
        (out.setdefault(parent, {}) if parent else out)[name] = value
    return out


def of(channel: ChannelName) -> tuple[Setting, ...]:
    """The settings `channel` has, in console order."""
    return tuple(s for s in SETTINGS if channel in s.channels)

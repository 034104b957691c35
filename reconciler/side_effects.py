"""Side effects of each change kind, worded from docs/domain.md and counted from tenant data.

Each function takes an EffectContext and returns plain-words effects with counts; the
table in `actions.py` binds them to their action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.model import ChannelName, ChannelState
from reconciler.terminal import printable
from reconciler.words import plural


@dataclass(frozen=True, slots=True)
class SideEffect:
    """A consequence of a change, in plain words and as data."""

    kind: str
    text: str
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form; `count` only where it means something."""
        data: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.count is not None:
            data["count"] = self.count
        return data


@dataclass(frozen=True)
class EffectContext:
    """What an effect function may look at: the change and the channel as it is now."""

    channel: ChannelName
    target: str | None
    before: Any
    after: Any
    state: ChannelState
    directory_size: int


def _fx(kind: str, text: str, count: int | None = None) -> SideEffect:
    return SideEffect(kind, text, count)


def none(ctx: EffectContext) -> list[SideEffect]:
    """No side effect worth a line."""
    return []


def enable_channel(ctx: EffectContext) -> list[SideEffect]:
    """Turning on lets only listed members chat externally."""
    s = ctx.state
    who = (
        f"all {plural(ctx.directory_size, 'member')}"
        if s.all_members
        else f"members on the connected-members list ({len(s.members)} now)"
    )
    return [
        _fx(
            "external_chat_enabled",
            f"{who} can exchange messages with {ctx.channel.external} "
            "(once the external person adds them)",
            ctx.directory_size if s.all_members else len(s.members),
        ),
        _fx("members_list_editable", "the connected-members list becomes viewable and editable"),
    ]


def disable_channel(ctx: EffectContext) -> list[SideEffect]:
    """The one destructive action on the page (docs/domain.md#turning-a-channel-off)."""
    s = ctx.state
    rooms = s.open_room_total
    shown_unknown = sum(1 for n in s.open_rooms.values() if n)
    connected = ctx.directory_size if s.all_members else len(s.members)
    return [
        _fx(
            "rooms_hidden",
            f"{plural(rooms, 'open room')} with {ctx.channel.external} disappear from "
            "members' room lists",
            rooms,
        ),
        _fx(
            "members_unknown",
            f"{plural(shown_unknown, 'member')} shown as 'unknown' to {ctx.channel.external}",
            shown_unknown,
        ),
        _fx(
            "external_chat_disabled",
            f"{plural(connected, 'member')} lose external chat with {ctx.channel.external}",
            connected,
        ),
        _fx("history_kept", "conversation history is kept and searchable in Admin Audit"),
    ]


# Member-level effects name no member (the change's target does) and depend only on the
# channel and the member's room count, so the planner shares them across a 100k-member list.


def remove_member(ctx: EffectContext) -> list[SideEffect]:
    """Deleting a member from the list takes the authority away."""
    rooms = ctx.state.open_rooms.get(ctx.target or "", 0)
    return [
        _fx(
            "loses_external_chat",
            f"loses external chat with {ctx.channel.external}; {plural(rooms, 'open room')}",
            rooms,
        )
    ]


def add_member(ctx: EffectContext) -> list[SideEffect]:
    """Adding a member grants authority; the external person must still add them."""
    how = "adds them as a friend" if ctx.channel is ChannelName.LINE else "adds them"
    return [
        _fx(
            "gains_external_chat",
            f"may chat with {ctx.channel.external} once the external person {how}",
        )
    ]


def grant_all_members(ctx: EffectContext) -> list[SideEffect]:
    """'Grant to all members' mode: everyone now, and everyone who joins later."""
    gaining = max(ctx.directory_size - len(ctx.state.members), 0)
    return [
        _fx(
            "gains_external_chat",
            f"all {plural(ctx.directory_size, 'member')} may chat with {ctx.channel.external}; "
            f"{gaining} gain it now",
            gaining,
        ),
        _fx("new_members_granted", "members who join later get access automatically"),
    ]


def restrict_to_listed_members(ctx: EffectContext) -> list[SideEffect]:
    """Leaving 'all members' mode freezes today's members into an explicit list."""
    return [
        _fx(
            "list_frozen",
            f"the {plural(ctx.directory_size, 'member')} of today stay on the "
            "connected-members list until removed",
            ctx.directory_size,
        ),
        _fx(
            "new_members_not_granted",
            "members who join later no longer get access unless auto-grant is on",
        ),
    ]


def set_greeting(ctx: EffectContext) -> list[SideEffect]:
    """The greeting a LINE user receives on adding a member as a friend."""
    after = ctx.after or {}
    if after.get("enabled") is False:
        return [_fx("greeting_off", "LINE users who add a member as a friend get no greeting")]
    message = after.get("message")
    if message is None:
        message = (ctx.before or {}).get("message") or ""
    return [
        _fx(
            "greeting_sent",
            "LINE users who add a member as a friend automatically receive: " + _quote(message),
        )
    ]


def _quote(message: str) -> str:
    message = printable(message)  # side effects are read on terminals and in PR comments
    one_line = " ".join(message.split())
    return f"“{one_line[:117]}…”" if len(one_line) > 120 else f"“{one_line}”"


def set_auto_grant(ctx: EffectContext) -> list[SideEffect]:
    """Auto-grant decides what a new hire gets."""
    if ctx.after:
        return [
            _fx(
                "new_members_granted",
                "every member who joins later is added to the connected-members list automatically",
            )
        ]
    return [
        _fx(
            "new_members_not_granted",
            "members who join later get no access until an admin adds them",
        )
    ]


def set_file_restriction(ctx: EffectContext) -> list[SideEffect]:
    """Attachment buttons that go away or come back (docs/domain.md#restrict-file-transfer)."""
    rooms = ctx.state.open_room_total
    on = bool(ctx.after)
    buttons = "unavailable" if on else "available again"
    effects = [
        _fx(
            "buttons_disabled" if on else "buttons_enabled",
            f"Camera, Contacts and Drive (Folder) buttons {buttons} in rooms with "
            f"{ctx.channel.external} ({plural(rooms, 'open room')})",
            rooms,
        )
    ]
    if ctx.channel is ChannelName.LINEWORKS:  # external groups exist on LINE WORKS only
        effects.append(
            _fx(
                "attachments_blocked" if on else "attachments_allowed",
                f"in external groups, files {'cannot' if on else 'can'} be attached "
                "to notes, events and folders",
            )
        )
    return effects

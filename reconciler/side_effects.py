"""Side effects of each change kind, worded from docs/domain.md and counted from tenant data.

Each function takes an EffectContext and returns plain-words effects with counts; the
table in `actions.py` binds them to their action. Each effect keeps its message unsaid
(`msg`, reconciler.i18n.Msg) beside the English `text` that JSON and saved plans carry, so
a renderer says it in its reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.i18n import ENGLISH, N_, Messages, Msg
from reconciler.model import ChannelName, ChannelState
from reconciler.terminal import printable


@dataclass(frozen=True, slots=True)
class SideEffect:
    """A consequence of a change, in plain words and as data."""

    kind: str
    text: str
    count: int | None = None
    # The message behind `text`, for other languages; None for an effect read back from a
    # saved plan, which carries the English text only.
    msg: Msg | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON form; `count` only where it means something."""
        data: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.count is not None:
            data["count"] = self.count
        return data

    def say(self, t: Messages) -> str:
        """The effect in `t`'s language (the recorded English text when it has no msg)."""
        return self.text if self.msg is None or t.lang == "en" else self.msg.say(t)


@dataclass(frozen=True)
class EffectContext:
    """What an effect function may look at: the change and the channel as it is now."""

    channel: ChannelName
    target: str | None
    before: Any
    after: Any
    state: ChannelState
    directory_size: int


def _fx(kind: str, msg: Msg, count: int | None = None) -> SideEffect:
    """A side effect said by `msg`; it counts `count`, else what a counted message counts."""
    return SideEffect(kind, msg.say(ENGLISH), msg.n if count is None else count, msg)


def _external(channel: ChannelName) -> Msg:
    """Who is on the other side (ChannelName.external), to be said in the reader's words."""
    if channel is ChannelName.LINE:
        return Msg.of(N_("LINE users"))
    return Msg.of(N_("external LINE WORKS users"))


def enable_channel(ctx: EffectContext) -> list[SideEffect]:
    """Turning on lets only listed members chat externally."""
    s = ctx.state
    ext = _external(ctx.channel)
    if s.all_members:
        who = Msg.counted(
            "all {n} member can exchange messages with {external} "
            "(once the external person adds them)",
            "all {n} members can exchange messages with {external} "
            "(once the external person adds them)",
            ctx.directory_size,
            external=ext,
        )
    else:
        who = Msg.of(
            "members on the connected-members list ({listed} now) can exchange messages "
            "with {external} (once the external person adds them)",
            listed=len(s.members),
            external=ext,
        )
    return [
        _fx("external_chat_enabled", who, ctx.directory_size if s.all_members else len(s.members)),
        _fx(
            "members_list_editable",
            Msg.of("the connected-members list becomes viewable and editable"),
        ),
    ]


def disable_channel(ctx: EffectContext) -> list[SideEffect]:
    """The one destructive action on the page (docs/domain.md#turning-a-channel-off)."""
    s = ctx.state
    rooms = s.open_room_total
    shown_unknown = sum(1 for n in s.open_rooms.values() if n)
    connected = ctx.directory_size if s.all_members else len(s.members)
    ext = _external(ctx.channel)
    return [
        _fx(
            "rooms_hidden",
            Msg.counted(
                "{n} open room with {external} disappear from members' room lists",
                "{n} open rooms with {external} disappear from members' room lists",
                rooms,
                external=ext,
            ),
        ),
        _fx(
            "members_unknown",
            Msg.counted(
                "{n} member shown as 'unknown' to {external}",
                "{n} members shown as 'unknown' to {external}",
                shown_unknown,
                external=ext,
            ),
        ),
        _fx(
            "external_chat_disabled",
            Msg.counted(
                "{n} member lose external chat with {external}",
                "{n} members lose external chat with {external}",
                connected,
                external=ext,
            ),
        ),
        _fx(
            "history_kept",
            Msg.of("conversation history is kept and searchable in Admin Audit"),
        ),
    ]


# Member-level effects name no member (the change's target does) and depend only on the
# channel and the member's room count, so the planner shares them across a 100k-member list.


def remove_member(ctx: EffectContext) -> list[SideEffect]:
    """Deleting a member from the list takes the authority away."""
    rooms = ctx.state.open_rooms.get(ctx.target or "", 0)
    return [
        _fx(
            "loses_external_chat",
            Msg.counted(
                "loses external chat with {external}; {n} open room",
                "loses external chat with {external}; {n} open rooms",
                rooms,
                external=_external(ctx.channel),
            ),
        )
    ]


def add_member(ctx: EffectContext) -> list[SideEffect]:
    """Adding a member grants authority; the external person must still add them."""
    if ctx.channel is ChannelName.LINE:
        msg = Msg.of("may chat with LINE users once the external person adds them as a friend")
    else:
        msg = Msg.of("may chat with external LINE WORKS users once the external person adds them")
    return [_fx("gains_external_chat", msg)]


def grant_all_members(ctx: EffectContext) -> list[SideEffect]:
    """'Grant to all members' mode: everyone now, and everyone who joins later."""
    gaining = max(ctx.directory_size - len(ctx.state.members), 0)
    return [
        _fx(
            "gains_external_chat",
            Msg.counted(
                "all {n} member may chat with {external}; {gaining} gain it now",
                "all {n} members may chat with {external}; {gaining} gain it now",
                ctx.directory_size,
                external=_external(ctx.channel),
                gaining=gaining,
            ),
            gaining,
        ),
        _fx(
            "new_members_granted",
            Msg.of("members who join later get access automatically"),
        ),
    ]


def restrict_to_listed_members(ctx: EffectContext) -> list[SideEffect]:
    """Leaving 'all members' mode freezes today's members into an explicit list."""
    return [
        _fx(
            "list_frozen",
            Msg.counted(
                "the {n} member of today stay on the connected-members list until removed",
                "the {n} members of today stay on the connected-members list until removed",
                ctx.directory_size,
            ),
        ),
        _fx(
            "new_members_not_granted",
            Msg.of("members who join later no longer get access unless auto-grant is on"),
        ),
    ]


def set_greeting(ctx: EffectContext) -> list[SideEffect]:
    """The greeting a LINE user receives on adding a member as a friend."""
    after = ctx.after or {}
    if after.get("enabled") is False:
        return [
            _fx(
                "greeting_off",
                Msg.of("LINE users who add a member as a friend get no greeting"),
            )
        ]
    message = after.get("message")
    if message is None:
        message = (ctx.before or {}).get("message") or ""
    return [
        _fx(
            "greeting_sent",
            Msg.of(
                "LINE users who add a member as a friend automatically receive: {greeting}",
                greeting=_quote(message),
            ),
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
                Msg.of(
                    "every member who joins later is added to the connected-members list "
                    "automatically"
                ),
            )
        ]
    return [
        _fx(
            "new_members_not_granted",
            Msg.of("members who join later get no access until an admin adds them"),
        )
    ]


def set_file_restriction(ctx: EffectContext) -> list[SideEffect]:
    """Attachment buttons that go away or come back (docs/domain.md#restrict-file-transfer)."""
    rooms = ctx.state.open_room_total
    on = bool(ctx.after)
    ext = _external(ctx.channel)
    if on:
        buttons = Msg.counted(
            "Camera, Contacts and Drive (Folder) buttons unavailable in rooms with "
            "{external} ({n} open room)",
            "Camera, Contacts and Drive (Folder) buttons unavailable in rooms with "
            "{external} ({n} open rooms)",
            rooms,
            external=ext,
        )
    else:
        buttons = Msg.counted(
            "Camera, Contacts and Drive (Folder) buttons available again in rooms with "
            "{external} ({n} open room)",
            "Camera, Contacts and Drive (Folder) buttons available again in rooms with "
            "{external} ({n} open rooms)",
            rooms,
            external=ext,
        )
    effects = [_fx("buttons_disabled" if on else "buttons_enabled", buttons)]
    if ctx.channel is ChannelName.LINEWORKS:  # external groups exist on LINE WORKS only
        if on:
            files = Msg.of(
                "in external groups, files cannot be attached to notes, events and folders"
            )
        else:
            files = Msg.of("in external groups, files can be attached to notes, events and folders")
        effects.append(_fx("attachments_blocked" if on else "attachments_allowed", files))
    return effects

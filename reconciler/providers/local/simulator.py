"""The console simulator behind `lwr tenant`: external users adding members, and Admin
Audit's message search, on an open local tenant's connection (HR changes are in hr.py).

Each function runs inside the caller's transaction (LocalTenant's methods open it).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from reconciler.errors import TenantRuleError, UsageError
from reconciler.i18n import Said
from reconciler.model import ChannelName, ChannelState
from reconciler.providers.local.fileformat import now
from reconciler.providers.local.rows import exists, load_settings, stored

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class ContactResult:
    """The room an external user's add landed in."""

    room_id: int
    new_room: bool
    greeting_sent: bool


@dataclass(frozen=True)
class MessageRow:
    """One message as Admin Audit shows it (hidden rooms included)."""

    room_id: int
    channel: ChannelName
    member: str
    external: str  # the external user's id (LINE user id, or LINE WORKS login)
    external_name: str | None
    hidden: bool
    sender_kind: str  # member | external | greeting
    sender: str  # the member's email, or the external user's id
    automatic: bool  # the automatic greeting, sent on the member's behalf
    text: str
    sent_at: str


def contact(
    conn: sqlite3.Connection,
    member: str,
    external_id: str,
    channel: ChannelName,
    external_name: str | None,
    legacy: bool,
) -> ContactResult:
    """An external user adds `member` (a LINE friend add, or a LINE WORKS add).

    Refused unless the channel is on and the member is in the directory with authority.
    The pair's visible room is reused if there is one; otherwise a room is created and,
    on the LINE channel with the greeting on, the greeting is sent into it. A reused room
    means they are friends already, so no greeting: the console greets new friends only.
    """
    ch = load_settings(conn)[channel]
    spelled = _check_contact(conn, channel, ch, member.lower(), legacy)
    row = conn.execute(
        "SELECT id FROM rooms WHERE channel = ? AND member = ? AND external_id = ? AND hidden = 0",
        (channel.value, spelled, external_id),
    ).fetchone()
    if row is not None:
        if external_name is not None:
            conn.execute("UPDATE rooms SET external_name = ? WHERE id = ?", (external_name, row[0]))
        return ContactResult(int(row[0]), new_room=False, greeting_sent=False)
    sent_at = now()
    room_id = insert_room(conn, channel, spelled, external_id, external_name, sent_at)
    greeting = ch.greeting_message if ch.greeting_enabled else None
    # An empty greeting text sends nothing: there is no message to deliver.
    if greeting:
        conn.execute(
            "INSERT INTO messages (room_id, sender_kind, text, sent_at)"
            " VALUES (?, 'greeting', ?, ?)",
            (room_id, greeting, sent_at),
        )
    return ContactResult(room_id, new_room=True, greeting_sent=bool(greeting))


def messages(
    conn: sqlite3.Connection, search: str | None, channel: ChannelName | None
) -> list[MessageRow]:
    """Conversation history as Admin Audit shows it, hidden rooms included, oldest first.

    `search` matches (case-insensitively for ASCII) the message text, the member, and
    the external user's id or name.
    """
    where: list[str] = []
    params: list[Any] = []
    if channel is not None:
        where.append("r.channel = ?")
        params.append(channel.value)
    if search:
        pattern = "%" + _escape_like(search) + "%"
        columns = ("m.text", "r.member", "r.external_id", "r.external_name")
        where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
        params.extend([pattern] * len(columns))
    sql = (
        "SELECT r.id, r.channel, r.member, r.external_id, r.external_name, r.hidden,"
        " m.sender_kind, m.text, m.sent_at"
        " FROM messages m JOIN rooms r ON r.id = m.room_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY m.sent_at, m.id"
    return [_message_row(row) for row in conn.execute(sql, params)]


def insert_room(
    conn: sqlite3.Connection,
    channel: ChannelName,
    member: str,
    external_id: str,
    external_name: str | None,
    created_at: str,
) -> int:
    """A new visible room between `member` and an external user; its id."""
    cur = conn.execute(
        "INSERT INTO rooms (channel, member, external_id, external_name, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (channel.value, member, external_id, external_name, created_at),
    )
    assert cur.lastrowid is not None  # an INSERT into a rowid table always sets it
    return cur.lastrowid


def channel_name(value: ChannelName | str) -> ChannelName:
    """A channel named on the command line."""
    try:
        return ChannelName(value)
    except ValueError:
        raise UsageError(
            Said.of("unknown channel {channel!r}: expected line or lineworks", channel=value)
        ) from None


def login_email(email: str) -> str:
    """A member's login email, lower-cased (the console treats them case-insensitively)."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise TenantRuleError(Said.of("{email!r} is not a login email (name@domain)", email=email))
    return email


def spelling(conn: sqlite3.Connection, email: str, legacy: bool) -> str | None:
    """How the file spells the member `email` (lower-cased), or None if not a member."""
    return stored(conn, "SELECT email FROM members WHERE", (), {email}, legacy).get(email)


def _check_contact(
    conn: sqlite3.Connection, name: ChannelName, ch: ChannelState, member: str, legacy: bool
) -> str:
    """The console's conditions for an external user reaching a member; their spelling."""
    spelled = spelling(conn, member, legacy)
    if spelled is None:
        raise TenantRuleError(Said.of("{email} is not in the tenant directory", email=member))
    if not ch.enabled:
        raise TenantRuleError(
            Said.of(
                "the {channel} channel is off: {external} cannot reach the company's members",
                channel=name.value,
                external=name.external,
            )
        )
    if not ch.all_members and not exists(
        conn, "SELECT 1 FROM connected WHERE channel = ? AND email = ?", name.value, spelled
    ):
        raise TenantRuleError(
            Said.of(
                "{email} is not on the {channel} connected-members list, so "
                "has no authority to chat with {external}",
                email=member,
                channel=name.value,
                external=name.external,
            )
        )
    return spelled


def _message_row(row: tuple[Any, ...]) -> MessageRow:
    room_id, channel, member, external_id, external_name, hidden, kind, text, sent_at = row
    return MessageRow(
        room_id=room_id,
        channel=ChannelName(channel),
        member=member,
        external=external_id,
        external_name=external_name,
        hidden=bool(hidden),
        sender_kind=kind,
        sender=external_id if kind == "external" else member,
        automatic=kind == "greeting",
        text=text,
        sent_at=sent_at,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

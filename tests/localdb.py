"""Test helper: what a local tenant's file holds beyond the Provider protocol, read by SQL.

The rooms of the simulated console (members' side and external side) are what tests check
after a channel goes off; no product code needs them, so they are read here.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from reconciler.model import ChannelName

#: How the external side of a room sees a member after the channel went off.
UNKNOWN_MEMBER = "unknown"


@dataclass(frozen=True)
class RoomRow:
    """One room in a room list; `member` is "unknown" on the external side after a channel off."""

    room_id: int
    channel: ChannelName
    member: str
    external: str
    external_name: str | None
    created_at: str


@dataclass(frozen=True)
class RoomLists:
    """The same rooms from both sides."""

    member_side: tuple[RoomRow, ...]  # what members see in their room lists (visible only)
    external_side: tuple[RoomRow, ...]  # what external users see (every room)


def room_lists(tenant: Path | object, member: str | None = None) -> RoomLists:
    """Room lists of `member` (or everyone) in the tenant file (a path, or a LocalTenant)."""
    path = Path(getattr(tenant, "path", tenant))  # type: ignore[arg-type]
    sql = (
        "SELECT id, channel, member, external_id, external_name, created_at, hidden,"
        " member_unknown FROM rooms"
    )
    params: tuple[str, ...] = ()
    if member is not None:
        sql += " WHERE lower(member) = ?"
        params = (member.lower(),)
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    member_side = tuple(_room(row, row[2]) for row in rows if not row[6])
    external_side = tuple(_room(row, UNKNOWN_MEMBER if row[7] else row[2]) for row in rows)
    return RoomLists(member_side, external_side)


def _room(row: tuple[object, ...], shown: object) -> RoomRow:
    return RoomRow(
        room_id=int(row[0]),
        channel=ChannelName(row[1]),  # type: ignore[call-overload]
        member=str(shown),
        external=str(row[3]),
        external_name=None if row[4] is None else str(row[4]),
        created_at=str(row[5]),
    )

"""Rows of the local tenant's file read as model values, and settings and lists written back.

Emails are compared as the console does, case-insensitively: this lwr stores them
lower-cased, and a file of an older lwr (a mixed-case domain) reads as if it had.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from reconciler.actions import Change
from reconciler.errors import TenantError
from reconciler.i18n import Said
from reconciler.model import ChannelName, ChannelState, TenantState
from reconciler.providers.local.fileformat import COLUMNS, SWITCHES

_IN_CHUNK = 500  # bound-parameter count per `IN (...)` query, far below SQLite's limit
_SELECT_SETTINGS = f"SELECT name, {', '.join(COLUMNS.values())} FROM channels"


def load_settings(conn: sqlite3.Connection) -> dict[ChannelName, ChannelState]:
    """Both channels' settings (lists empty); a missing row means a damaged tenant."""
    found: dict[ChannelName, ChannelState] = {}
    for name, *values in conn.execute(_SELECT_SETTINGS):
        fields: dict[str, Any] = {
            attr: (None if v is None else bool(v)) if attr in SWITCHES else v
            for attr, v in zip(COLUMNS, values, strict=True)
        }
        found[ChannelName(name)] = ChannelState(members=frozenset(), **fields)
    missing = [c.value for c in ChannelName if c not in found]
    if missing:
        raise TenantError(
            Said.of(
                "the local tenant is damaged: no settings for {channels}",
                channels=", ".join(missing),
            )
        )
    return {c: found[c] for c in ChannelName}


def store_settings(conn: sqlite3.Connection, name: ChannelName, ch: ChannelState) -> None:
    """Write one channel's settings row from `ch` (its lists are written elsewhere)."""
    sets = ", ".join(f"{column} = ?" for column in COLUMNS.values())
    conn.execute(
        f"UPDATE channels SET {sets} WHERE name = ?",
        [*(getattr(ch, attr) for attr in COLUMNS), name.value],
    )


def with_lists(
    conn: sqlite3.Connection,
    name: ChannelName,
    ch: ChannelState,
    directory: frozenset[str],
    legacy: bool,
) -> ChannelState:
    """`ch` with its list and open-room counts, as `read` shows them."""
    members = directory if ch.all_members else listed(conn, name, directory, legacy)
    open_rooms: dict[str, int] = {}
    for member, count in conn.execute(
        "SELECT member, count(*) FROM rooms WHERE channel = ? AND hidden = 0 GROUP BY member",
        (name.value,),
    ):
        key = member.lower() if legacy else member
        open_rooms[key] = open_rooms.get(key, 0) + count
    return replace(ch, members=members, open_rooms=open_rooms)


def emails(
    conn: sqlite3.Connection, select: str, *params: str, legacy: bool = False
) -> frozenset[str]:
    """The emails a `SELECT email ...` query returns, as a set (lower-cased if `legacy`).

    Fetched as one JSON array rather than a row per email: half the time at 100k members.
    """
    try:
        (text,) = conn.execute(f"SELECT json_group_array(email) FROM ({select})", params).fetchone()
    except sqlite3.OperationalError:  # an SQLite built without JSON: one row per email
        found = [e for (e,) in conn.execute(select, params)]
    else:
        found = json.loads(text)
    return frozenset(e.lower() for e in found) if legacy else frozenset(found)


def listed(
    conn: sqlite3.Connection, channel: ChannelName, directory: frozenset[str], legacy: bool
) -> frozenset[str]:
    """A channel's connected-members list, built from whichever side is smaller.

    A list holding most of the directory is the directory minus the few not on it: a
    merge of two sorted scans in SQLite, and no new strings in Python.
    """
    (count,) = conn.execute(
        "SELECT count(*) FROM connected WHERE channel = ?", (channel.value,)
    ).fetchone()
    if count == len(directory):
        return directory  # the foreign key makes the list a subset: same size, same set
    if 2 * count <= len(directory):
        return emails(
            conn, "SELECT email FROM connected WHERE channel = ?", channel.value, legacy=legacy
        )
    missing = emails(
        conn,
        "SELECT email FROM members EXCEPT SELECT email FROM connected WHERE channel = ? ORDER BY 1",
        channel.value,
        legacy=legacy,
    )
    return directory - missing if missing else directory


def stored(
    conn: sqlite3.Connection, select: str, params: tuple[str, ...], values: set[str], legacy: bool
) -> dict[str, str]:
    """Which of the lower-cased `values` the query `select` (ending in WHERE or AND) finds
    by email, each with its spelling in the file; in bounded `IN (...)` chunks."""
    unique = sorted(values)
    # lower() cannot use the index: only a file of an older lwr pays for it.
    column = "lower(email)" if legacy else "email"
    found: dict[str, str] = {}
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        for (email,) in conn.execute(f"{select} {column} IN ({marks})", (*params, *chunk)):
            found[email.lower() if legacy else email] = email
    return found


def one(conn: sqlite3.Connection, sql: str) -> Any:
    """The single value `sql` selects; none means a damaged tenant."""
    row = conn.execute(sql).fetchone()
    if row is None:
        raise TenantError(Said.of("the local tenant is damaged: `{sql}` found nothing", sql=sql))
    return row[0]


def exists(conn: sqlite3.Connection, sql: str, *params: str) -> bool:
    """Whether `sql` finds a row."""
    return conn.execute(sql, params).fetchone() is not None


def scoped_state(
    conn: sqlite3.Connection, changes: Sequence[Change], legacy: bool
) -> tuple[TenantState, dict[str, str]]:
    """The tenant as far as `changes` can see it: the settings, and the directory and
    lists restricted to the members the changes name (the console's member rules look
    at nothing else), so a batch costs its own size, not the directory's."""
    named = {c.target.lower() for c in changes if c.spec.member_level and isinstance(c.target, str)}
    spelled = stored(conn, "SELECT email FROM members WHERE", (), named, legacy)
    directory = frozenset(spelled)
    channels: dict[ChannelName, ChannelState] = {}
    for name, ch in load_settings(conn).items():
        members = (
            directory
            if ch.all_members
            else frozenset(
                stored(
                    conn,
                    "SELECT email FROM connected WHERE channel = ? AND",
                    (name.value,),
                    set(directory),
                    legacy,
                )
            )
        )
        channels[name] = replace(ch, members=members)
    return TenantState(domain="", directory=directory, channels=channels), spelled


def write_changes(
    conn: sqlite3.Connection, before: TenantState, after: TenantState, spell: dict[str, str]
) -> None:
    """Write what one run changed: settings, lists, and the rooms a channel off hides."""
    for name, new in after.channels.items():
        old = before.channels[name]
        if new is old:
            continue
        store_settings(conn, name, new)
        if old.enabled and not new.enabled:
            conn.execute(
                "UPDATE rooms SET hidden = 1, member_unknown = 1 WHERE channel = ? AND hidden = 0",
                (name.value,),
            )
        if old.all_members != new.all_members:
            # Either way the list becomes today's directory: in "all" mode it mirrors
            # it, and leaving "all" mode takes nobody's access away at that step.
            conn.execute("DELETE FROM connected WHERE channel = ?", (name.value,))
            conn.execute(
                "INSERT INTO connected (channel, email) SELECT ?, email FROM members",
                (name.value,),
            )
            continue
        channel = name.value  # once: Enum's `value` is a Python-level property
        conn.executemany(
            "INSERT INTO connected (channel, email) VALUES (?, ?)",
            [(channel, spell[e]) for e in sorted(new.members - old.members)],
        )
        conn.executemany(
            "DELETE FROM connected WHERE channel = ? AND email = ?",
            [(channel, spell[e]) for e in sorted(old.members - new.members)],
        )

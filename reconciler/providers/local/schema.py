"""The local tenant file's SQLite schema, today's and the upgrades from older ones.

A file's `PRAGMA user_version` says which it has; fileformat opens, checks and upgrades it.
"""

from __future__ import annotations

#: `PRAGMA user_version` of the files this code writes; a higher one is from a newer lwr.
SCHEMA_VERSION = 2

_ROOMS = """CREATE TABLE {table} (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL REFERENCES channels(name),
        member TEXT NOT NULL,
        external_id TEXT NOT NULL,
        external_name TEXT,
        created_at TEXT NOT NULL,
        hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
        member_unknown INTEGER NOT NULL DEFAULT 0 CHECK (member_unknown IN (0, 1)))"""
# One visible room per (channel, member, external user); it also serves the open-room
# counts of read() and the hiding of disable_channel, both filtered on hidden = 0.
_ROOM_INDEXES = (
    """CREATE UNIQUE INDEX rooms_visible_pair ON rooms (channel, member, external_id)
        WHERE hidden = 0""",
    "CREATE INDEX rooms_by_member ON rooms (member)",
)
# Org units (部署) and directory groups with their members. A unit's name is unique among
# its siblings only (東日本 may sit under two departments), and holds no "/": paths join
# names with it. No index by email: only `lwr tenant leave/move` look a member up there,
# and a scan costs them milliseconds where an index would cost every seed and file.
_ORG_CHART = (
    """CREATE TABLE orgunits (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL CHECK (name <> '' AND instr(name, '/') = 0),
        parent_id INTEGER REFERENCES orgunits(id))""",
    # NULLs are distinct in a UNIQUE constraint: top-level units need the coalesce.
    "CREATE UNIQUE INDEX orgunits_sibling_names ON orgunits (coalesce(parent_id, 0), name)",
    """CREATE TABLE orgunit_members (
        unit_id INTEGER NOT NULL REFERENCES orgunits(id),
        email TEXT NOT NULL REFERENCES members(email) ON DELETE CASCADE,
        PRIMARY KEY (unit_id, email)) WITHOUT ROWID""",
    """CREATE TABLE directory_groups (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE CHECK (name <> ''))""",
    """CREATE TABLE group_members (
        group_id INTEGER NOT NULL REFERENCES directory_groups(id),
        email TEXT NOT NULL REFERENCES members(email) ON DELETE CASCADE,
        PRIMARY KEY (group_id, email)) WITHOUT ROWID""",
)

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        domain TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE members (
        email TEXT PRIMARY KEY,
        name TEXT,
        joined_at TEXT NOT NULL) WITHOUT ROWID""",
    # greeting_* are NULL exactly on lineworks: that channel has no greeting at all.
    """CREATE TABLE channels (
        name TEXT PRIMARY KEY CHECK (name IN ('line', 'lineworks')),
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        all_members INTEGER NOT NULL CHECK (all_members IN (0, 1)),
        auto_grant INTEGER NOT NULL CHECK (auto_grant IN (0, 1)),
        restrict_file_transfer INTEGER NOT NULL CHECK (restrict_file_transfer IN (0, 1)),
        greeting_enabled INTEGER CHECK (greeting_enabled IN (0, 1)),
        greeting_message TEXT,
        CHECK ((name = 'line') = (greeting_enabled IS NOT NULL AND greeting_message IS NOT NULL))
    ) WITHOUT ROWID""",
    """CREATE TABLE connected (
        channel TEXT NOT NULL REFERENCES channels(name),
        email TEXT NOT NULL REFERENCES members(email) ON DELETE CASCADE,
        PRIMARY KEY (channel, email)) WITHOUT ROWID""",
    # `member` names no members row: a member who left keeps their rooms' history (Admin
    # Audit), and the rows of the directory are only the members of today.
    _ROOMS.format(table="rooms"),
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        sender_kind TEXT NOT NULL CHECK (sender_kind IN ('member', 'external', 'greeting')),
        text TEXT NOT NULL,
        sent_at TEXT NOT NULL)""",
    *_ROOM_INDEXES,
    "CREATE INDEX messages_by_room ON messages (room_id, sent_at)",
    *_ORG_CHART,
)
#: The tables of a file of each schema version: a file missing one is not an lwr tenant.
TABLES_V1 = frozenset({"meta", "members", "channels", "connected", "rooms", "messages"})
TABLES = TABLES_V1 | {"orgunits", "orgunit_members", "directory_groups", "group_members"}
#: What makes a file of version N-1 one of version N, by N: each runs once, in the
#: transaction that sets user_version, with foreign keys off (a table is rebuilt).
UPGRADES: dict[int, tuple[str, ...]] = {
    # 2: the org chart, and rooms that outlive their member (`lwr tenant leave`).
    2: (
        _ROOMS.format(table="rooms_v2"),
        "INSERT INTO rooms_v2 SELECT id, channel, member, external_id, external_name,"
        " created_at, hidden, member_unknown FROM rooms",
        "DROP TABLE rooms",
        "ALTER TABLE rooms_v2 RENAME TO rooms",
        *_ROOM_INDEXES,
        *_ORG_CHART,
    ),
}

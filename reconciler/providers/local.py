"""The local tenant: an embedded SQLite file that behaves like the LINE WORKS console.

Owns the file's schema, the console rules of docs/domain.md, the demo company of `lwr tenant init`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote

from reconciler.actions import ACTIONS, Action, Change, Execution
from reconciler.errors import TenantError, TenantRuleError, UsageError
from reconciler.model import ChannelName, ChannelState, TenantState
from reconciler.providers.base import Provider
from reconciler.sqlite_files import (
    SIDECARS,
    FileStamp,
    connect_readonly,
    damage_advice,
    has_wal,
    make_private_dir,
    quick_check,
)
from reconciler.uris import local_key

#: `PRAGMA user_version` of the files this code writes; a higher one is from a newer lwr.
SCHEMA_VERSION = 1
BATCH_SIZE = 500
DEFAULT_DOMAIN = "example.co.jp"
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a writer waits for another writer before giving up
#: How the external side of a room sees a member after the channel went off.
UNKNOWN_MEMBER = "unknown"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_IN_CHUNK = 500  # bound-parameter count per `IN (...)` query, far below SQLite's limit
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DOMAIN = re.compile(r"[^@\s]+\.[^@\s]+")

_SCHEMA: tuple[str, ...] = (
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
    """CREATE TABLE rooms (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL REFERENCES channels(name),
        member TEXT NOT NULL REFERENCES members(email),
        external_id TEXT NOT NULL,
        external_name TEXT,
        created_at TEXT NOT NULL,
        hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
        member_unknown INTEGER NOT NULL DEFAULT 0 CHECK (member_unknown IN (0, 1)))""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        sender_kind TEXT NOT NULL CHECK (sender_kind IN ('member', 'external', 'greeting')),
        text TEXT NOT NULL,
        sent_at TEXT NOT NULL)""",
    # One visible room per (channel, member, external user); it also serves the open-room
    # counts of read() and the hiding of disable_channel, both filtered on hidden = 0.
    """CREATE UNIQUE INDEX rooms_visible_pair ON rooms (channel, member, external_id)
        WHERE hidden = 0""",
    "CREATE INDEX rooms_by_member ON rooms (member)",
    "CREATE INDEX messages_by_room ON messages (room_id, sent_at)",
)
_TABLES = frozenset({"meta", "members", "channels", "connected", "rooms", "messages"})


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class JoinResult:
    """What a new hire got on joining."""

    email: str
    added_to: tuple[ChannelName, ...]  # lists the member was added to by auto-grant
    granted_by_all_members: tuple[ChannelName, ...]  # channels on in "all members" mode


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


@dataclass(frozen=True)
class RoomRow:
    """One room in a room list; `member` is "unknown" on the external side after a channel off."""

    room_id: int
    channel: ChannelName
    member: str
    external: str  # the external user's id
    external_name: str | None
    created_at: str


@dataclass(frozen=True)
class RoomLists:
    """The same rooms from both sides."""

    member_side: tuple[RoomRow, ...]  # what members see in their room lists (visible only)
    external_side: tuple[RoomRow, ...]  # what external users see (every room)


class ChangeRefused(TenantRuleError):
    """The console's rules refused one change of an apply; nothing of the batch was applied."""

    def __init__(self, change_id: str, rule: str) -> None:
        self.change_id = change_id
        self.rule = rule
        super().__init__(f"change {change_id} refused: {rule}; nothing of this batch was applied")


# --------------------------------------------------------------------------- the tenant


@dataclass
class _Channel:
    """A channel's settings row, as a working copy inside one write transaction."""

    enabled: bool
    all_members: bool
    auto_grant: bool
    restrict_file_transfer: bool
    greeting_enabled: bool | None
    greeting_message: str | None


class LocalTenant(Provider):
    """A `local:` tenant: implements the Provider protocol and the console's simulations."""

    batch_size: int = BATCH_SIZE

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Wrap an open, verified connection; use `LocalTenant.open` or `init_demo` instead."""
        self.path = path
        self.key = local_key(path)
        self._conn = conn
        #: Set when opened `immutable` (read-only, no -wal): what the file looked like then.
        self._stamp: FileStamp | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        domain: str = DEFAULT_DOMAIN,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        readonly: bool = False,
    ) -> LocalTenant:
        """Open the tenant at `path`; with `create`, make an empty one (of `domain`) if missing.

        A file that is not an lwr tenant, is damaged, or comes from a newer lwr raises
        TenantError and is never written to. `readonly` (the read-only commands): nothing is
        written or created, not even SQLite's side files, so it works on read-only files and
        directories; such a tenant cannot apply.
        """
        file = Path(path).absolute()
        if not file.exists():
            if not create or readonly:
                raise TenantError(
                    f"no tenant at {file}: create one with `lwr tenant init --demo --tenant "
                    f"local:{path}` (without --demo: an empty one)")
            _check_domain(domain)
            _build(file, domain, seed=None, overwrite=False)
        if not file.is_file():
            raise TenantError(f"local tenant {file} is not a regular file")
        damaged = _check_header(file)
        if damaged is not None:
            _check_with_wal(file, damaged, busy_timeout)
        conn, stamp = _connect(file, busy_timeout, readonly=readonly)
        try:
            _verify(conn, file, readonly=readonly)
        except BaseException:
            conn.close()
            raise
        tenant = cls(file.resolve(), conn)
        tenant._stamp = stamp
        return tenant

    # ------------------------------------------------------------------ Provider protocol

    def read(self) -> TenantState:
        """The whole page and directory from one consistent snapshot."""
        with self._transaction("read", write=False) as conn:
            domain = _one(conn, "SELECT domain FROM meta")
            directory = _emails(conn, "SELECT email FROM members")
            settings = _load_channels(conn)
            channels = {
                name: _channel_state(conn, name, ch, directory) for name, ch in settings.items()
            }
        return TenantState(domain=str(domain), directory=directory, channels=channels)

    def directory(self) -> frozenset[str]:
        """Login emails of every member."""
        with self._transaction("read the directory", write=False) as conn:
            return _emails(conn, "SELECT email FROM members")

    def domain(self) -> str:
        """The tenant's domain, e.g. example.co.jp."""
        with self._transaction("read the domain", write=False) as conn:
            return str(_one(conn, "SELECT domain FROM meta"))

    def execution(self, action: Action) -> Execution:
        """The local tenant carries out every action itself."""
        return "local"

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply `changes` in order in one transaction: all of them, or none and an error.

        A change whose `before` is set must find the tenant in that state (a second apply of
        the same plan is refused rather than silently repeated).
        """
        if not changes:
            return
        with self._transaction("apply", write=True) as conn:
            settings = _load_channels(conn)
            for run in _runs(changes):
                if run[0].spec.member_level:
                    _apply_member_run(conn, settings[run[0].channel], run)
                else:
                    _apply_channel_change(conn, settings[run[0].channel], run[0])
            _store_channels(conn, settings)

    def close(self) -> None:
        """Close the connection; SQLite checkpoints the WAL when the last one closes."""
        self._conn.close()

    def __enter__(self) -> LocalTenant:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalTenant({self.key!r})"

    # ------------------------------------------------------------------ simulations

    def join(self, email: str, name: str | None = None) -> JoinResult:
        """A new hire joins the directory; auto-grant adds them to the lists it applies to.

        Auto-grant acts only on a channel that is on and in listed mode. While a channel is
        off its list is frozen (the console cannot edit it then), so auto-grant does nothing
        there; in "all members" mode the new hire is granted implicitly, with no list entry.
        """
        email = _login_email(email)
        with self._transaction("join", write=True) as conn:
            if _exists(conn, "SELECT 1 FROM members WHERE email = ?", email):
                raise TenantRuleError(f"{email} is already in the directory")
            conn.execute("INSERT INTO members (email, name, joined_at) VALUES (?, ?, ?)",
                         (email, name, _now()))
            added: list[ChannelName] = []
            implicit: list[ChannelName] = []
            for channel, ch in _load_channels(conn).items():
                if ch.enabled and ch.all_members:
                    implicit.append(channel)
                elif ch.enabled and ch.auto_grant:
                    conn.execute("INSERT INTO connected (channel, email) VALUES (?, ?)",
                                 (channel.value, email))
                    added.append(channel)
        return JoinResult(email, tuple(added), tuple(implicit))

    def contact(
        self,
        member: str,
        external_id: str,
        channel: ChannelName | str,
        external_name: str | None = None,
    ) -> ContactResult:
        """An external user adds `member` (a LINE friend add, or a LINE WORKS add).

        Refused unless the channel is on and the member is in the directory with authority.
        The pair's visible room is reused if there is one; otherwise a room is created and,
        on the LINE channel with the greeting on, the greeting is sent into it. A reused room
        means they are friends already, so no greeting: the console greets new friends only.
        """
        name = _channel_name(channel)
        member = member.lower()
        external_id = external_id.strip()
        if not external_id:
            raise TenantRuleError("an external user needs a non-empty id")
        with self._transaction("contact", write=True) as conn:
            ch = _load_channels(conn)[name]
            _check_contact(conn, name, ch, member)
            row = conn.execute(
                "SELECT id FROM rooms WHERE channel = ? AND member = ? AND external_id = ?"
                " AND hidden = 0", (name.value, member, external_id)).fetchone()
            if row is not None:
                if external_name is not None:
                    conn.execute("UPDATE rooms SET external_name = ? WHERE id = ?",
                                 (external_name, row[0]))
                return ContactResult(int(row[0]), new_room=False, greeting_sent=False)
            now = _now()
            room_id = _insert_room(conn, name, member, external_id, external_name, now)
            greeting = ch.greeting_message if ch.greeting_enabled else None
            # An empty greeting text sends nothing: there is no message to deliver.
            if greeting:
                conn.execute("INSERT INTO messages (room_id, sender_kind, text, sent_at)"
                             " VALUES (?, 'greeting', ?, ?)", (room_id, greeting, now))
        return ContactResult(room_id, new_room=True, greeting_sent=bool(greeting))

    def messages(
        self, search: str | None = None, channel: ChannelName | str | None = None
    ) -> list[MessageRow]:
        """Conversation history as Admin Audit shows it, hidden rooms included, oldest first.

        `search` matches (case-insensitively for ASCII) the message text, the member, and
        the external user's id or name.
        """
        where: list[str] = []
        params: list[Any] = []
        if channel is not None:
            where.append("r.channel = ?")
            params.append(_channel_name(channel).value)
        if search:
            pattern = "%" + _escape_like(search) + "%"
            columns = ("m.text", "r.member", "r.external_id", "r.external_name")
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
            params.extend([pattern] * len(columns))
        sql = ("SELECT r.id, r.channel, r.member, r.external_id, r.external_name, r.hidden,"
               " m.sender_kind, m.text, m.sent_at"
               " FROM messages m JOIN rooms r ON r.id = m.room_id")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY m.sent_at, m.id"
        with self._transaction("search messages", write=False) as conn:
            return [_message_row(row) for row in conn.execute(sql, params)]

    def rooms(self, member: str | None = None) -> RoomLists:
        """Room lists of `member` (or everyone): the members' side and the external side."""
        sql = ("SELECT id, channel, member, external_id, external_name, created_at, hidden,"
               " member_unknown FROM rooms")
        params: tuple[str, ...] = ()
        if member is not None:
            sql += " WHERE member = ?"
            params = (member.lower(),)
        with self._transaction("list rooms", write=False) as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        member_side = tuple(_room_row(row, row[2]) for row in rows if not row[6])
        external_side = tuple(_room_row(row, UNKNOWN_MEMBER if row[7] else row[2])
                              for row in rows)
        return RoomLists(member_side, external_side)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: a consistent snapshot for reads, the write lock up front for writes.

        Any SQLite failure rolls back and becomes a TenantError; rule refusals pass through.
        """
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._check_unchanged()  # a file changed under an immutable read is not damaged
            raise TenantError(f"local tenant {self.path}: {what} failed: "
                              f"{_explain(exc, self.path)}") from exc
        self._check_unchanged()

    def _check_unchanged(self) -> None:
        """An immutable read sees no writer: prove none wrote the file while it read."""
        if self._stamp is not None and FileStamp.of(self.path) != self._stamp:
            raise TenantError(f"local tenant {self.path} was changed by another process while "
                              "it was read; run the command again")


# --------------------------------------------------------------------------- apply rules


def _runs(changes: Sequence[Change]) -> Iterator[list[Change]]:
    """Consecutive member changes of one action and channel form a run (one executemany);
    every channel-level change is a run of its own. Order is kept exactly."""
    run: list[Change] = []
    for change in changes:
        if run and change.spec.member_level and (
                change.action, change.channel) == (run[0].action, run[0].channel):
            run.append(change)
            continue
        if run:
            yield run
        run = [change]
    if run:
        yield run


def _refuse(change: Change, rule: str) -> NoReturn:
    raise ChangeRefused(change.id, rule)


def _check_direction(change: Change, current: bool, field: str) -> None:
    """`after` must be the action's direction; a stated `before` must be what the tenant has."""
    fixed = ACTIONS[change.action].fixed_after
    if change.after is not None and change.after is not fixed:
        _refuse(change, f"{change.action.value} sets {field} to {_js(fixed)}, "
                        f"not {_js(change.after)}")
    if change.before is not None and change.before is not current:
        _refuse(change, f"{field} is {_js(current)} on the tenant but the change expects "
                        f"{_js(change.before)} (applied already, or changed since the plan)")


def _switch(change: Change, current: bool, field: str) -> bool:
    """The new value of an on/off setting, after checking the change's before/after."""
    after: bool = change.after
    if not isinstance(after, bool):
        _refuse(change, f"{field} must be set to true or false, not {_js(after)}")
    if change.before is not None and change.before is not current:
        _refuse(change, f"{field} is {_js(current)} on the tenant but the change expects "
                        f"{_js(change.before)} (changed since the plan)")
    return after


def _require_on(change: Change, ch: _Channel, rule: str) -> None:
    if not ch.enabled:
        _refuse(change, rule)


def _apply_channel_change(conn: sqlite3.Connection, ch: _Channel, change: Change) -> None:
    """One channel-level change: mutate the working copy, and the rows it touches."""
    channel = change.channel.value
    if change.target is not None:
        _refuse(change, f"{change.action.value} is a channel-level change and takes no target")
    match change.action:
        case Action.ENABLE_CHANNEL:
            # Hidden rooms stay hidden and the list is what it was when the channel went off.
            _check_direction(change, ch.enabled, "enabled")
            ch.enabled = True
        case Action.DISABLE_CHANNEL:
            _check_direction(change, ch.enabled, "enabled")
            ch.enabled = False
            conn.execute("UPDATE rooms SET hidden = 1, member_unknown = 1"
                         " WHERE channel = ? AND hidden = 0", (channel,))
        case Action.GRANT_ALL_MEMBERS | Action.RESTRICT_TO_LISTED_MEMBERS:
            _require_on(change, ch, "the members mode can only be changed while the channel is on")
            _check_direction(change, ch.all_members, "all_members")
            ch.all_members = change.action is Action.GRANT_ALL_MEMBERS
            # Either way the list becomes today's directory: in "all" mode it mirrors it, and
            # leaving "all" mode takes nobody's access away at that step.
            conn.execute("DELETE FROM connected WHERE channel = ?", (channel,))
            conn.execute("INSERT INTO connected (channel, email) SELECT ?, email FROM members",
                         (channel,))
        case Action.SET_GREETING:
            _set_greeting(ch, change)
        case Action.SET_AUTO_GRANT:
            ch.auto_grant = _switch(change, ch.auto_grant, "auto_grant_new_members")
        case Action.SET_FILE_RESTRICTION:
            ch.restrict_file_transfer = _switch(change, ch.restrict_file_transfer,
                                                "restrict_file_transfer")
        case _:
            _refuse(change, f"{change.action.value} is not a channel-level change")


def _set_greeting(ch: _Channel, change: Change) -> None:
    """`after` holds `enabled` and/or `message`; a stated `before` must match those keys."""
    if change.channel is not ChannelName.LINE:
        _refuse(change, "the automatic greeting exists on the LINE channel only")
    after, before = change.after, change.before
    if not isinstance(after, dict) or not after or not set(after) <= {"enabled", "message"}:
        _refuse(change, "set_greeting needs `enabled` and/or `message`, nothing else")
    if "enabled" in after and not isinstance(after["enabled"], bool):
        _refuse(change, "greeting `enabled` must be true or false")
    if "message" in after and not isinstance(after["message"], str):
        _refuse(change, "greeting `message` must be text")
    current = {"enabled": ch.greeting_enabled, "message": ch.greeting_message}
    if before is not None:
        if not isinstance(before, dict) or not set(before) <= set(current):
            _refuse(change, "set_greeting's `before` may hold only `enabled` and `message`")
        stale = [k for k, v in before.items() if current[k] != v]
        if stale:
            _refuse(change, f"greeting {', '.join(sorted(stale))} on the tenant differs from "
                            "what the change expects (changed since the plan)")
    if "enabled" in after:
        ch.greeting_enabled = after["enabled"]
    if "message" in after:
        ch.greeting_message = after["message"]


def _apply_member_run(conn: sqlite3.Connection, ch: _Channel, run: list[Change]) -> None:
    """add_member or remove_member for many members of one channel, checked as a set."""
    first = run[0]
    adding = first.action is Action.ADD_MEMBER
    _require_on(first, ch, "the connected-members list can only be edited while the channel is on")
    if ch.all_members:
        _refuse(first, "channel is in 'grant to all members' mode; its list cannot be edited "
                       "(restrict_to_listed_members first)")
    targets: list[str] = []
    for change in run:
        if not change.target:
            _refuse(change, f"{change.action.value} needs a member email as target")
        if change.after not in (None, adding) or change.before not in (None, not adding):
            _refuse(change, f"{change.action.value} moves membership from "
                            f"{_js(not adding)} to {_js(adding)}, not {_js(change.before)} "
                            f"to {_js(change.after)}")
        targets.append(change.target.lower())
    channel = first.channel.value
    known = _present(conn, "SELECT email FROM members WHERE email", (), targets)
    listed = _present(conn, "SELECT email FROM connected WHERE channel = ? AND email",
                      (channel,), targets)
    for change, email in zip(run, targets, strict=True):
        if email not in known:
            _refuse(change, f"{email} is not in the tenant directory")
        if adding and email in listed:
            _refuse(change, f"{email} is already on the connected-members list")
        if not adding and email not in listed:
            _refuse(change, f"{email} is not on the connected-members list")
        # Later changes of the run see this one (a duplicate in the batch is refused).
        if adding:
            listed.add(email)
        else:
            listed.discard(email)
    sql = ("INSERT INTO connected (channel, email) VALUES (?, ?)" if adding
           else "DELETE FROM connected WHERE channel = ? AND email = ?")
    conn.executemany(sql, ((channel, email) for email in targets))


def _present(conn: sqlite3.Connection, select: str, params: tuple[str, ...],
             values: list[str]) -> set[str]:
    """Which of `values` the `select ... IN (values)` query finds, in bounded chunks."""
    unique = sorted(set(values))
    found: set[str] = set()
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start:start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(e for (e,) in conn.execute(f"{select} IN ({marks})", (*params, *chunk)))
    return found


# --------------------------------------------------------------------------- reads


_CHANNEL_COLUMNS = ("enabled, all_members, auto_grant, restrict_file_transfer,"
                    " greeting_enabled, greeting_message")


def _load_channels(conn: sqlite3.Connection) -> dict[ChannelName, _Channel]:
    """Both channels' settings; a missing row means a damaged tenant, never a default."""
    found: dict[ChannelName, _Channel] = {}
    for name, *v in conn.execute(f"SELECT name, {_CHANNEL_COLUMNS} FROM channels"):
        found[ChannelName(name)] = _Channel(
            bool(v[0]), bool(v[1]), bool(v[2]), bool(v[3]),
            None if v[4] is None else bool(v[4]), v[5])
    missing = [c.value for c in ChannelName if c not in found]
    if missing:
        raise TenantError(f"the local tenant is damaged: no settings for {', '.join(missing)}")
    return {c: found[c] for c in ChannelName}


def _store_channels(conn: sqlite3.Connection, settings: dict[ChannelName, _Channel]) -> None:
    conn.executemany(
        "UPDATE channels SET enabled = ?, all_members = ?, auto_grant = ?,"
        " restrict_file_transfer = ?, greeting_enabled = ?, greeting_message = ?"
        " WHERE name = ?",
        [(ch.enabled, ch.all_members, ch.auto_grant, ch.restrict_file_transfer,
          ch.greeting_enabled, ch.greeting_message, name.value)
         for name, ch in settings.items()])


def _channel_state(conn: sqlite3.Connection, name: ChannelName, ch: _Channel,
                   directory: frozenset[str]) -> ChannelState:
    members = directory if ch.all_members else _listed(conn, name, directory)
    open_rooms = dict(conn.execute(
        "SELECT member, count(*) FROM rooms WHERE channel = ? AND hidden = 0 GROUP BY member",
        (name.value,)))
    return ChannelState(
        enabled=ch.enabled,
        all_members=ch.all_members,
        members=members,
        auto_grant_new_members=ch.auto_grant,
        restrict_file_transfer=ch.restrict_file_transfer,
        greeting_enabled=ch.greeting_enabled,
        greeting_message=ch.greeting_message,
        open_rooms=open_rooms,
    )


def _check_contact(conn: sqlite3.Connection, name: ChannelName, ch: _Channel,
                   member: str) -> None:
    """The console's conditions for an external user reaching a member."""
    if not _exists(conn, "SELECT 1 FROM members WHERE email = ?", member):
        raise TenantRuleError(f"{member} is not in the tenant directory")
    if not ch.enabled:
        raise TenantRuleError(f"the {name.value} channel is off: {name.external} cannot "
                              "reach the company's members")
    if not ch.all_members and not _exists(
            conn, "SELECT 1 FROM connected WHERE channel = ? AND email = ?", name.value, member):
        raise TenantRuleError(f"{member} is not on the {name.value} connected-members list, so "
                              f"has no authority to chat with {name.external}")


def _insert_room(conn: sqlite3.Connection, channel: ChannelName, member: str,
                 external_id: str, external_name: str | None, created_at: str) -> int:
    cur = conn.execute(
        "INSERT INTO rooms (channel, member, external_id, external_name, created_at)"
        " VALUES (?, ?, ?, ?, ?)", (channel.value, member, external_id, external_name, created_at))
    assert cur.lastrowid is not None  # an INSERT into a rowid table always sets it
    return cur.lastrowid


def _message_row(row: tuple[Any, ...]) -> MessageRow:
    room_id, channel, member, external_id, external_name, hidden, kind, text, sent_at = row
    return MessageRow(
        room_id=room_id, channel=ChannelName(channel), member=member, external=external_id,
        external_name=external_name, hidden=bool(hidden), sender_kind=kind,
        sender=external_id if kind == "external" else member,
        automatic=kind == "greeting", text=text, sent_at=sent_at)


def _room_row(row: tuple[Any, ...], shown_member: str) -> RoomRow:
    return RoomRow(room_id=row[0], channel=ChannelName(row[1]), member=shown_member,
                   external=row[3], external_name=row[4], created_at=row[5])


def _emails(conn: sqlite3.Connection, select: str, *params: str) -> frozenset[str]:
    """The emails a `SELECT email ...` query returns, as a set.

    Fetched as one JSON array rather than a row per email: half the time at 100k members.
    """
    try:
        (text,) = conn.execute(f"SELECT json_group_array(email) FROM ({select})",
                               params).fetchone()
    except sqlite3.OperationalError:  # an SQLite built without JSON: one row per email
        return frozenset(e for (e,) in conn.execute(select, params))
    return frozenset(json.loads(text))


def _listed(conn: sqlite3.Connection, channel: ChannelName,
            directory: frozenset[str]) -> frozenset[str]:
    """A channel's connected-members list, built from whichever side is smaller.

    A list holding most of the directory is the directory minus the few not on it: a
    merge of two sorted scans in SQLite, and no new strings in Python.
    """
    (count,) = conn.execute("SELECT count(*) FROM connected WHERE channel = ?",
                            (channel.value,)).fetchone()
    if count == len(directory):
        return directory  # the foreign key makes the list a subset: same size, same set
    if 2 * count <= len(directory):
        return _emails(conn, "SELECT email FROM connected WHERE channel = ?", channel.value)
    missing = _emails(conn, "SELECT email FROM members EXCEPT SELECT email FROM connected"
                            " WHERE channel = ? ORDER BY 1", channel.value)
    return directory - missing if missing else directory


def _one(conn: sqlite3.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    if row is None:
        raise TenantError(f"the local tenant is damaged: `{sql}` found nothing")
    return row[0]


def _exists(conn: sqlite3.Connection, sql: str, *params: str) -> bool:
    return conn.execute(sql, params).fetchone() is not None


# --------------------------------------------------------------------------- the file


def _connect(path: Path, busy_timeout: float, *,
             readonly: bool) -> tuple[sqlite3.Connection, FileStamp | None]:
    """A connection in autocommit mode (transactions are explicit); mode=rw never creates.

    `readonly`: one that writes and creates nothing (sqlite_files.connect_readonly), with
    the stamp to check after each read when SQLite cannot see writers.
    """
    stamp = None
    try:
        if readonly:
            conn, stamp = connect_readonly(path, busy_timeout)
        else:
            conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True,
                                   isolation_level=None, timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise TenantError(f"cannot open local tenant {path}: {_explain(exc, path)}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across application crashes in WAL mode; fsync only at checkpoints.
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        conn.close()
        raise TenantError(f"cannot open local tenant {path}: {_explain(exc, path)}") from exc
    return conn, stamp


def _check_header(path: Path) -> str | None:
    """Reject non-SQLite, truncated and newer-version files from their header bytes alone,
    before SQLite opens them (opening a WAL file creates side files; a bad one must not).

    A main file shorter than its header says, with a -wal beside it, is what a kill during
    SQLite's checkpoint leaves (page 1 copied, later pages not yet): the -wal holds them.
    Then SQLite decides, after opening: the reason is returned for `_verify` to check.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            header = fh.read(_HEADER_SIZE)
    except OSError as exc:
        raise TenantError(f"cannot read local tenant {path}: {exc.strerror}") from exc
    untouched = "; the file was left untouched"
    if not header.startswith(_SQLITE_MAGIC):
        raise TenantError(f"{path} is not an lwr tenant: not a SQLite database (empty, "
                          f"corrupted or another kind of file){untouched}")
    if len(header) < _HEADER_SIZE:
        raise TenantError(f"{path} is corrupted: truncated SQLite header{untouched}; "
                          f"{damage_advice(path)}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise TenantError(f"{path} is corrupted: invalid page size {page_size}{untouched}; "
                          f"{damage_advice(path)}")
    _check_version(path, int.from_bytes(header[60:64], "big", signed=True))
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is trustworthy only when "version-valid-for" matches the
    # change counter; then a shorter file means it was cut off.
    if pages and header[92:96] == header[24:28] and size < pages * page_size:
        why = f"truncated to {size} bytes, the database needs {pages * page_size}"
        if has_wal(path):
            return why
        raise TenantError(f"{path} is corrupted: {why}{untouched}; {damage_advice(path)}")
    return None


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise TenantError(
            f"{path} was written by a newer lwr (tenant schema version {version}; this lwr "
            f"knows up to {SCHEMA_VERSION}); upgrade lwr. The file was left untouched")


def _check_with_wal(path: Path, damaged: str, busy_timeout: float) -> None:
    """The header looks `damaged` but a -wal exists: SQLite reads both, and only a failed
    check of both makes the tenant damaged.

    Read-only, so that a failed check leaves the -wal alone: a writer's close would
    checkpoint and delete it, and the frames SQLite cannot use may still be salvaged.
    """
    problem = ""
    try:
        conn, _ = connect_readonly(path, busy_timeout)
    except sqlite3.Error as exc:
        problem = str(exc)
    else:
        with closing(conn):
            problem = quick_check(conn)
    if problem:
        raise TenantError(f"{path} is damaged: {damaged}, and SQLite cannot read it with its "
                          f"-wal either ({problem}); {damage_advice(path)}")


def _verify(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    """Check the schema before anything writes: only then switch the file to WAL."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        _check_version(path, version)
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(_TABLES - names)
        if version < 1 or missing:
            raise TenantError(f"{path} is a SQLite database but not an lwr tenant "
                              f"(missing: {', '.join(missing) or 'schema version'}); "
                              "the file was left untouched")
        if not readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise TenantError(f"cannot open local tenant {path}: {_explain(exc, path)}") from exc


def _build(path: Path, domain: str, seed: Callable[[sqlite3.Connection, str], None] | None,
           *, overwrite: bool) -> None:
    """Write a complete tenant beside `path`, then move it into place in one rename.

    A crash mid-way leaves at most a temporary file, never a half-made tenant.
    """
    try:
        make_private_dir(path.parent)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise TenantError(f"cannot create local tenant {path}: {exc.strerror}") from exc
    tmp = Path(name)
    try:
        _write_new(tmp, domain.lower(), seed)  # domains are case-insensitive: kept lower-case
        _publish(tmp, path, overwrite=overwrite)
    except sqlite3.Error as exc:
        raise TenantError(f"cannot create local tenant {path}: {_explain(exc, path)}") from exc
    except OSError as exc:
        raise TenantError(f"cannot create local tenant {path}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in SIDECARS)):
            leftover.unlink(missing_ok=True)


def _write_new(tmp: Path, domain: str,
               seed: Callable[[sqlite3.Connection, str], None] | None) -> None:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # A private file nobody else sees yet: no journal while loading, WAL from then on.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        for statement in _SCHEMA:
            conn.execute(statement)
        now = _now()
        conn.execute("INSERT INTO meta (id, domain, created_at) VALUES (1, ?, ?)", (domain, now))
        conn.executemany(
            f"INSERT INTO channels (name, {_CHANNEL_COLUMNS}) VALUES (?, 0, 0, 0, 0, ?, ?)",
            [("line", 0, ""), ("lineworks", None, None)])
        if seed is not None:
            seed(conn, domain)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())


def _publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished file to `path`; without `overwrite`, never replace an existing one."""
    if not overwrite:
        try:
            os.link(tmp, path)  # atomic "create if absent", unlike exists() + rename
        except FileExistsError:
            raise TenantError(f"a tenant already exists at {path}") from None
        return
    # The old file's WAL would be replayed onto the new one: drop it with the old file.
    for suffix in SIDECARS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)


def _explain(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text or "unsupported file format" in text:
        return f"the file is corrupted ({text}); {damage_advice(path)}"
    if "locked" in text or "busy" in text:
        return "the tenant is busy: another process holds the write lock (try again)"
    if "readonly" in text:
        return f"{text}: the command needs write access to {path} and its directory"
    return text


# --------------------------------------------------------------------------- small helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _js(value: object) -> str:
    """A value as it reads in a plan (true/false rather than True/False)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _channel_name(value: ChannelName | str) -> ChannelName:
    try:
        return ChannelName(value)
    except ValueError:
        raise UsageError(f"unknown channel {value!r}: expected line or lineworks") from None


def _login_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise TenantRuleError(f"{email!r} is not a login email (name@domain)")
    return email


def _check_domain(domain: str) -> None:
    if not _DOMAIN.fullmatch(domain):
        raise UsageError(f"{domain!r} is not a domain (e.g. example.co.jp)")


# --------------------------------------------------------------------------- the demo

DEMO_MIN_MEMBERS = 8
#: The eight named members of the demo company; examples/company.yaml relies on them.
DEMO_PEOPLE: tuple[tuple[str, str], ...] = (
    ("alice", "山田 花子"),
    ("bob", "鈴木 一郎"),
    ("carol", "佐藤 美咲"),
    ("dave", "田中 大輔"),
    ("erin", "伊藤 恵理"),
    ("frank", "渡辺 健太"),
    ("grace", "高橋 優子"),
    ("heidi", "中村 陽菜"),
)
_DEMO_LINE_MEMBERS = ("alice", "bob", "carol")
# (member, LINE user id, LINE user name, [(sender_kind, text)]) — a few live conversations.
_DEMO_ROOMS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("alice", "U-line-001", "佐藤様", (
        ("external", "はじめまして。見積もりをお願いできますか。"),
        ("member", "お問い合わせありがとうございます。本日中にお送りします。"),
    )),
    ("alice", "U-line-002", "Ken Brown", (
        ("external", "Hi, is the showroom open on Saturday?"),
        ("member", "Yes, from 10:00 to 17:00. See you there!"),
    )),
    ("carol", "U-line-003", "鈴木様", (
        ("external", "予約の変更をお願いします。"),
        ("member", "承知しました。ご希望の日時を教えてください。"),
        ("external", "来週火曜日の14時でお願いします。"),
    )),
)


def init_demo(
    path: str | os.PathLike[str],
    *,
    domain: str = DEFAULT_DOMAIN,
    members: int = DEMO_MIN_MEMBERS,
    force: bool = False,
) -> LocalTenant:
    """Create the demo company at `path` and open it; an existing tenant needs `force`.

    Eight named members (alice … heidi) plus `member000009@…` up to `members`; the LINE
    channel on with alice, bob, carol (and every tenth extra member) listed and three
    conversations with LINE users; the LINE WORKS channel off with an empty list.
    """
    if members < DEMO_MIN_MEMBERS:
        raise UsageError(f"the demo company has at least {DEMO_MIN_MEMBERS} members")
    _check_domain(domain)
    file = Path(path).absolute()
    if file.exists() and not force:
        raise TenantError(f"a tenant already exists at {file}; use --force to replace it")

    def seed(conn: sqlite3.Connection, seed_domain: str) -> None:
        _seed_demo(conn, seed_domain, members)

    _build(file, domain, seed, overwrite=force)
    return LocalTenant.open(file)


def _seed_demo(conn: sqlite3.Connection, domain: str, total: int) -> None:
    now = datetime.now(UTC)
    joined = now.isoformat(timespec="seconds")
    extras = range(DEMO_MIN_MEMBERS + 1, total + 1)
    conn.executemany("INSERT INTO members (email, name, joined_at) VALUES (?, ?, ?)",
                     [(f"{user}@{domain}", name, joined) for user, name in DEMO_PEOPLE])
    conn.executemany("INSERT INTO members (email, name, joined_at) VALUES (?, ?, ?)",
                     ((f"member{i:06d}@{domain}", f"社員 {i:06d}", joined) for i in extras))
    conn.execute("UPDATE channels SET enabled = 1 WHERE name = 'line'")
    line = [f"{user}@{domain}" for user in _DEMO_LINE_MEMBERS]
    # Every tenth extra member is listed too, so large demos have a list worth planning.
    line += [f"member{i:06d}@{domain}" for i in extras if i % 10 == 0]
    conn.executemany("INSERT INTO connected (channel, email) VALUES ('line', ?)",
                     [(email,) for email in line])
    for days_ago, (user, external_id, external_name, lines) in enumerate(_DEMO_ROOMS, 1):
        start = now - timedelta(days=days_ago)
        room_id = _insert_room(conn, ChannelName.LINE, f"{user}@{domain}", external_id,
                               external_name, start.isoformat(timespec="seconds"))
        conn.executemany(
            "INSERT INTO messages (room_id, sender_kind, text, sent_at) VALUES (?, ?, ?, ?)",
            [(room_id, kind, text, (start + timedelta(minutes=5 * n)).isoformat(
                timespec="seconds")) for n, (kind, text) in enumerate(lines)])

"""HR changes in the simulated company: a hire joins, a member moves to another org unit, a
member leaves, a directory group gains or loses members.

Each function runs inside the caller's write transaction (LocalTenant's methods open it),
so a refused change (an unknown unit, a member not in the directory) changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import TenantRuleError
from reconciler.i18n import Said
from reconciler.model import ChannelName
from reconciler.orgchart import OrgChart
from reconciler.providers.local.fileformat import now
from reconciler.providers.local.orgunits import find_group, find_unit, memberships, read_chart
from reconciler.providers.local.rows import load_settings
from reconciler.providers.local.simulator import login_email, spelling


@dataclass(frozen=True)
class JoinResult:
    """What a new hire got on joining."""

    email: str
    added_to: tuple[ChannelName, ...]  # lists the member was added to by auto-grant
    granted_by_all_members: tuple[ChannelName, ...]  # channels on in "all members" mode
    orgunits: tuple[str, ...] = ()  # paths of the units the hire joined


@dataclass(frozen=True)
class MoveResult:
    """A member's org units before and after a move, as paths."""

    email: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class LeaveResult:
    """What leaving the company took from a member."""

    email: str
    removed_from: tuple[ChannelName, ...]  # connected-members lists they were on
    orgunits: tuple[str, ...]  # paths of the units they were in
    groups: tuple[str, ...]  # names of the groups they were in
    rooms_closed: int  # their visible rooms with outsiders, now shown as "unknown"


@dataclass(frozen=True)
class GroupResult:
    """Who a group edit added and removed (already there, or not there, is no change)."""

    group: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def join(
    conn: sqlite3.Connection,
    email: str,
    name: str | None,
    legacy: bool,
    orgunits: Sequence[str] = (),
) -> JoinResult:
    """A new hire joins the directory (and `orgunits`, by name or path); auto-grant adds
    them to the lists it applies to.

    Auto-grant acts only on a channel that is on and in listed mode. While a channel is
    off its list is frozen (the console cannot edit it then), so auto-grant does nothing
    there; in "all members" mode the new hire is granted implicitly, with no list entry.
    """
    email = login_email(email)
    if spelling(conn, email, legacy) is not None:
        raise TenantRuleError(Said.of("{email} is already in the directory", email=email))
    chart = read_chart(conn, legacy, members=False) if orgunits else OrgChart()
    units = _units(chart, orgunits)
    conn.execute(
        "INSERT INTO members (email, name, joined_at) VALUES (?, ?, ?)", (email, name, now())
    )
    _place(conn, email, units)
    added: list[ChannelName] = []
    implicit: list[ChannelName] = []
    for channel, ch in load_settings(conn).items():
        if ch.enabled and ch.all_members:
            implicit.append(channel)
        elif ch.enabled and ch.auto_grant_new_members:
            conn.execute(
                "INSERT INTO connected (channel, email) VALUES (?, ?)", (channel.value, email)
            )
            added.append(channel)
    paths = tuple(sorted(chart.path(u) for u in units))
    return JoinResult(email, tuple(added), tuple(implicit), paths)


def move(conn: sqlite3.Connection, email: str, orgunits: Sequence[str], legacy: bool) -> MoveResult:
    """The member now belongs to `orgunits` (names or paths) and to no other unit.

    A move changes no connected-members list: the console's lists name people, not
    departments; a desired file's org-unit selectors follow the move at the next apply.
    """
    if not orgunits:
        raise TenantRuleError(Said.of("a move needs the org unit to move to"))
    spelled = _member(conn, email, legacy)
    chart = read_chart(conn, legacy, members=False)
    units = _units(chart, orgunits)
    before, _ = memberships(conn, chart, spelled)
    conn.execute("DELETE FROM orgunit_members WHERE email = ?", (spelled,))
    _place(conn, spelled, units)
    after = tuple(sorted(chart.path(u) for u in units))
    return MoveResult(spelled.lower() if legacy else spelled, before, after)


def leave(conn: sqlite3.Connection, email: str, legacy: bool) -> LeaveResult:
    """The member leaves the company: out of the directory, of every list, unit and group.

    Their rooms with outsiders close as a channel turned off closes them: gone from room
    lists, the member shown as "unknown" to the outsider, the history kept for Admin Audit.
    """
    spelled = _member(conn, email, legacy)
    lists = tuple(
        ChannelName(c)
        for (c,) in conn.execute(
            "SELECT channel FROM connected WHERE email = ? ORDER BY channel", (spelled,)
        )
    )
    units, groups = memberships(conn, read_chart(conn, legacy, members=False), spelled)
    closed = conn.execute(
        "UPDATE rooms SET hidden = 1, member_unknown = 1 WHERE member = ? AND hidden = 0",
        (spelled,),
    ).rowcount
    # The foreign keys' ON DELETE CASCADE takes the member off lists, units and groups.
    conn.execute("DELETE FROM members WHERE email = ?", (spelled,))
    return LeaveResult(spelled.lower() if legacy else spelled, lists, units, groups, closed)


def edit_group(
    conn: sqlite3.Connection,
    name: str,
    add: Sequence[str],
    remove: Sequence[str],
    legacy: bool,
) -> GroupResult:
    """Members of the directory join or leave the group `name`."""
    group = find_group(read_chart(conn, legacy, members=False), name)
    gid = int(group.id)
    added = {_member(conn, e, legacy): None for e in add}
    gone = {_member(conn, e, legacy): None for e in remove}
    both = sorted(added.keys() & gone.keys())
    if both:
        raise TenantRuleError(
            Said.of(
                "both added to and removed from {group}: {email}", group=group.name, email=both[0]
            )
        )
    present = {
        e for (e,) in conn.execute("SELECT email FROM group_members WHERE group_id = ?", (gid,))
    }
    new = sorted(e for e in added if e not in present)
    old = sorted(e for e in gone if e in present)
    conn.executemany(
        "INSERT INTO group_members (group_id, email) VALUES (?, ?)", [(gid, e) for e in new]
    )
    conn.executemany(
        "DELETE FROM group_members WHERE group_id = ? AND email = ?", [(gid, e) for e in old]
    )
    return GroupResult(group.name, tuple(new), tuple(old))


def _member(conn: sqlite3.Connection, email: str, legacy: bool) -> str:
    """How the file spells the member `email`; refused if not in the directory."""
    address = login_email(email)
    spelled = spelling(conn, address, legacy)
    if spelled is None:
        raise TenantRuleError(Said.of("{email} is not in the tenant directory", email=address))
    return spelled


def _units(chart: OrgChart, orgunits: Sequence[str]) -> list[str]:
    """The ids of the units named, each once, in the order given."""
    return list(dict.fromkeys(find_unit(chart, text) for text in orgunits))


def _place(conn: sqlite3.Connection, spelled: str, units: Sequence[str]) -> None:
    conn.executemany(
        "INSERT INTO orgunit_members (unit_id, email) VALUES (?, ?)",
        [(int(u), spelled) for u in units],
    )

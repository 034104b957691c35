"""The demo company of `lwr tenant init --demo`: its people, lists and conversations.

The one definition of the demo's names, emails and member numbering: the seed, bench/ and
tests/ all import it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.errors import TenantError, UsageError
from reconciler.i18n import Said
from reconciler.model import ChannelName
from reconciler.providers.local.fileformat import DEFAULT_DOMAIN, build, check_domain
from reconciler.providers.local.simulator import insert_room
from reconciler.providers.local.tenant import LocalTenant

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
#: Who the demo lists on LINE, besides every tenth extra member.
DEMO_LINE_MEMBERS = ("alice", "bob", "carol")
#: The demo company's org units, parents first, by path. 東日本 is both a sales and a
#: development unit: the one name two units share, which a selector must write as a path.
DEMO_UNITS: tuple[str, ...] = (
    "営業部",
    "営業部/東日本",
    "営業部/西日本",
    "開発部",
    "開発部/東日本",
    "総務部",
)
#: The units of the named members (heidi belongs to two).
_PEOPLE_UNITS: dict[str, tuple[str, ...]] = {
    "alice": ("営業部/東日本",),
    "bob": ("営業部/東日本",),
    "carol": ("営業部/西日本",),
    "dave": ("営業部",),
    "erin": ("開発部",),
    "frank": ("開発部/東日本",),
    "grace": ("総務部",),
    "heidi": ("総務部", "営業部/西日本"),
}
#: Extra member `i` is in unit _EXTRA_UNITS[i % 10]: sales holds half the company.
_EXTRA_UNITS = (
    "営業部/東日本",
    "営業部/東日本",
    "営業部/西日本",
    "営業部/西日本",
    "営業部",
    "開発部",
    "開発部",
    "開発部/東日本",
    "総務部",
    "総務部",
)
#: The demo's directory groups: who of the named members is in each, and which extra
#: members (every how many-th).
DEMO_GROUPS: dict[str, tuple[tuple[str, ...], int]] = {
    "partner-support": (("bob", "erin", "heidi"), 50),
    "managers": (("dave", "erin", "grace"), 200),
}
# (member, LINE user id, LINE user name, [(sender_kind, text)]) — a few live conversations.
_DEMO_ROOMS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "alice",
        "U-line-001",
        "佐藤様",
        (
            ("external", "はじめまして。見積もりをお願いできますか。"),
            ("member", "お問い合わせありがとうございます。本日中にお送りします。"),
        ),
    ),
    (
        "alice",
        "U-line-002",
        "Ken Brown",
        (
            ("external", "Hi, is the showroom open on Saturday?"),
            ("member", "Yes, from 10:00 to 17:00. See you there!"),
        ),
    ),
    (
        "carol",
        "U-line-003",
        "鈴木様",
        (
            ("external", "予約の変更をお願いします。"),
            ("member", "承知しました。ご希望の日時を教えてください。"),
            ("external", "来週火曜日の14時でお願いします。"),
        ),
    ),
)


def init_demo(
    path: str | os.PathLike[str],
    *,
    domain: str = DEFAULT_DOMAIN,
    members: int = DEMO_MIN_MEMBERS,
    force: bool = False,
) -> LocalTenant:
    """Create the demo company at `path` and open it; an existing tenant needs `force`.

    Eight named members (alice … heidi) plus `member000009@…` up to `members`, spread over
    the org units DEMO_UNITS, some in the groups DEMO_GROUPS; the LINE channel on with
    alice, bob, carol (and every tenth extra member) listed and three conversations with
    LINE users; the LINE WORKS channel off with an empty list.
    """
    if members < DEMO_MIN_MEMBERS:
        raise UsageError(Said.of("the demo company has at least {n} members", n=DEMO_MIN_MEMBERS))
    check_domain(domain)
    file = Path(path).absolute()
    if file.exists() and not force:
        raise TenantError(
            Said.of("a tenant already exists at {file}; use --force to replace it", file=str(file))
        )

    def seed(conn: sqlite3.Connection, seed_domain: str) -> None:
        _seed_demo(conn, seed_domain, members)

    build(file, domain, seed, overwrite=force)
    return LocalTenant.open(file)


def extra_member(number: int, domain: str = DEFAULT_DOMAIN) -> str:
    """The email of extra member `number` (9 upwards): member000009@example.co.jp."""
    return f"member{number:06d}@{domain}"


def demo_directory(total: int, domain: str = DEFAULT_DOMAIN) -> list[str]:
    """Every member of a demo company of `total` members, in seeding order."""
    named = [f"{user}@{domain}" for user, _ in DEMO_PEOPLE]
    return named + [extra_member(i, domain) for i in range(DEMO_MIN_MEMBERS + 1, total + 1)]


def demo_line_list(total: int, domain: str = DEFAULT_DOMAIN) -> list[str]:
    """Who the demo company of `total` members lists on LINE."""
    # Every tenth extra member is listed too, so large demos have a list worth planning.
    return [f"{user}@{domain}" for user in DEMO_LINE_MEMBERS] + [
        extra_member(i, domain) for i in range(DEMO_MIN_MEMBERS + 1, total + 1) if i % 10 == 0
    ]


def demo_units(total: int, domain: str = DEFAULT_DOMAIN) -> dict[str, list[str]]:
    """The direct members of each org unit of a demo company of `total` members, by path,
    each list sorted. Every 25th extra member also belongs to 総務部 (a second unit)."""
    found: dict[str, list[str]] = {path: [] for path in DEMO_UNITS}
    for user, paths in _PEOPLE_UNITS.items():
        for path in paths:
            found[path].append(f"{user}@{domain}")
    for i in range(DEMO_MIN_MEMBERS + 1, total + 1):
        email = extra_member(i, domain)
        found[_EXTRA_UNITS[i % 10]].append(email)
        if i % 25 == 0 and _EXTRA_UNITS[i % 10] != "総務部":
            found["総務部"].append(email)
    return {path: sorted(emails) for path, emails in found.items()}


def demo_groups(total: int, domain: str = DEFAULT_DOMAIN) -> dict[str, list[str]]:
    """The members of each directory group of a demo company of `total` members."""
    return {
        name: [f"{user}@{domain}" for user in people]
        + [extra_member(i, domain) for i in range(every, total + 1, every)]
        for name, (people, every) in DEMO_GROUPS.items()
    }


def _seed_demo(conn: sqlite3.Connection, domain: str, total: int) -> None:
    now = datetime.now(UTC)
    joined = now.isoformat(timespec="seconds")
    conn.executemany(
        "INSERT INTO members (email, name, joined_at) VALUES (?, ?, ?)",
        [(f"{user}@{domain}", name, joined) for user, name in DEMO_PEOPLE],
    )
    # 社員 000009 for member000009@…: the number between "member" and "@".
    _bulk(
        conn,
        "INSERT INTO members (email, name, joined_at)",
        "value, '社員 ' || substr(value, 7, instr(value, '@') - 7), ?",
        (joined,),
        demo_directory(total, domain)[len(DEMO_PEOPLE) :],
    )
    _seed_org_chart(conn, domain, total)
    conn.execute("UPDATE channels SET enabled = 1 WHERE name = 'line'")
    conn.executemany(
        "INSERT INTO connected (channel, email) VALUES ('line', ?)",
        [(email,) for email in demo_line_list(total, domain)],
    )
    for days_ago, (user, external_id, external_name, lines) in enumerate(_DEMO_ROOMS, 1):
        start = now - timedelta(days=days_ago)
        room_id = insert_room(
            conn,
            ChannelName.LINE,
            f"{user}@{domain}",
            external_id,
            external_name,
            start.isoformat(timespec="seconds"),
        )
        conn.executemany(
            "INSERT INTO messages (room_id, sender_kind, text, sent_at) VALUES (?, ?, ?, ?)",
            [
                (
                    room_id,
                    kind,
                    text,
                    (start + timedelta(minutes=5 * n)).isoformat(timespec="seconds"),
                )
                for n, (kind, text) in enumerate(lines)
            ],
        )


def _seed_org_chart(conn: sqlite3.Connection, domain: str, total: int) -> None:
    ids: dict[str, int] = {}
    for number, path in enumerate(DEMO_UNITS, 1):
        parent, _, name = path.rpartition("/")
        conn.execute(
            "INSERT INTO orgunits (id, name, parent_id) VALUES (?, ?, ?)",
            (number, name, ids[parent] if parent else None),
        )
        ids[path] = number
    for path, emails in demo_units(total, domain).items():
        _bulk(
            conn, "INSERT INTO orgunit_members (unit_id, email)", "?, value", (ids[path],), emails
        )
    for number, (name, emails) in enumerate(demo_groups(total, domain).items(), 1):
        conn.execute("INSERT INTO directory_groups (id, name) VALUES (?, ?)", (number, name))
        _bulk(conn, "INSERT INTO group_members (group_id, email)", "?, value", (number,), emails)


def _bulk(
    conn: sqlite3.Connection, insert: str, select: str, head: tuple[Any, ...], values: list[str]
) -> None:
    """`insert` the rows `select` makes of each of `values` (`value` in it), its other
    parameters `head`: one statement over a JSON array, about 40 % less CPU at 100k rows
    than a row at a time, which an SQLite built without JSON falls back to."""
    try:
        conn.execute(f"{insert} SELECT {select} FROM json_each(?)", (*head, json.dumps(values)))
    except sqlite3.OperationalError:
        conn.executemany(
            f"WITH input(value) AS (VALUES (?)) {insert} SELECT {select} FROM input",
            [(value, *head) for value in values],
        )

"""The emulated domain's structure: org units, who belongs to each, directory groups.

Served as the Directory API documents it (docs/lineworks.md#org-units-and-groups):
`GET /orgunits` (`orgUnits[]`: orgUnitId, orgUnitName, parentOrgUnitId, displayLevel, …),
`GET /groups` (`groups[]`: groupId, groupName, members, …) and
`GET /groups/{groupId}/members` (`members[]`: id, type USER/ORGUNIT/GROUP), each paged by
`count` (at most 100) and `responseMetaData.nextCursor`; a user's units come with `GET /users`
in `organizations[].orgUnits[]`. Plain Python; server.py routes to `route`.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = [
    "DEPARTMENTS",
    "OrgData",
    "decode_cursor",
    "encode_cursor",
    "listing",
    "seed_departments",
]

#: Scopes that may read org units, and groups (orgunit-list, group-list, group-member-list).
UNIT_SCOPES = frozenset({"directory", "directory.read", "orgunit", "orgunit.read"})
GROUP_SCOPES = frozenset({"directory", "directory.read", "group", "group.read"})

#: The demo company's departments, by path: who belongs to each directly. Members beyond the
#: eight named ones are spread over the leaf units in turn (seed_departments).
DEPARTMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("営業部", ("alice",)),
    ("営業部/東日本", ("bob", "carol")),
    ("営業部/西日本", ("dave",)),
    ("開発部", ("erin", "frank")),
    ("総務部", ("grace", "heidi")),
)
_LEAVES = ("営業部/東日本", "営業部/西日本", "開発部", "総務部")
#: partner-support: erin by name and the whole of 総務部 (a unit as a group member).
PARTNER_SUPPORT = "partner-support"


@dataclass
class Unit:
    """One org unit."""

    unit_id: str
    name: str
    parent_id: str | None
    order: int


@dataclass
class DirGroup:
    """One directory group; members are (type, id): USER userId, ORGUNIT or GROUP id."""

    group_id: str
    name: str
    members: list[tuple[str, str]] = field(default_factory=list)


class OrgData:
    """The units and groups of one emulated domain, and whom each unit holds directly."""

    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}
        self.groups: dict[str, DirGroup] = {}
        self.placed: dict[str, list[str]] = {}  # login email → unit ids, primary first
        #: login email → (domain id, unit ids): a concurrent post in another domain of the
        #: group company (兼職), listed in the user's organizations[] but not by our /orgunits.
        self.elsewhere: dict[str, tuple[str, list[str]]] = {}
        self._ids = itertools.count(1)

    def add_unit(self, name: str, parent: str | None = None) -> Unit:
        """A unit under the unit with path `parent` (top level when None)."""
        parent_id = self.unit(parent).unit_id if parent else None
        unit = Unit(f"orgunit-{next(self._ids):06d}", name, parent_id, len(self.units) + 1)
        self.units[unit.unit_id] = unit
        return unit

    def unit(self, path: str) -> Unit:
        """The unit at `path` (names from the top, joined with /)."""
        parent: str | None = None
        found: Unit | None = None
        for name in path.split("/"):
            found = next(u for u in self.units.values() if u.name == name and u.parent_id == parent)
            parent = found.unit_id
        assert found is not None
        return found

    def place(self, email: str, *paths: str) -> None:
        """`email` belongs to these units (the first is the primary one), and to no other."""
        self.placed[email.lower()] = [self.unit(p).unit_id for p in paths]

    def add_group(self, name: str, members: Iterable[tuple[str, str]] = ()) -> DirGroup:
        """A group with members given as (type, id)."""
        group = DirGroup(f"group-{next(self._ids):06d}", name, list(members))
        self.groups[group.group_id] = group
        return group

    def level(self, unit: Unit) -> int:
        """displayLevel: 1 at the top."""
        depth, parent = 1, unit.parent_id
        while parent is not None:
            depth, parent = depth + 1, self.units[parent].parent_id
        return depth

    def organizations(self, email: str, domain_id: str) -> list[dict[str, object]]:
        """A user's `organizations[]` (one domain here) with its `orgUnits[]`."""
        # A unit gone since the user was placed stays named: the directory changed between
        # two reads, as a real one can.
        units = [self.units.get(u, Unit(u, "", None, 0)) for u in self.placed.get(email, ())]
        found = [_organization(domain_id, True, units)]
        if email in self.elsewhere:
            other, ids = self.elsewhere[email]
            found.append(_organization(other, False, [Unit(u, "", None, 0) for u in ids]))
        return found

    def unit_rows(self, domain_id: str) -> list[dict[str, object]]:
        """Every unit as GET /orgunits lists it (parents before children, by order)."""
        ordered = sorted(self.units.values(), key=lambda u: (self.level(u), u.order))
        return [
            {
                "domainId": int(domain_id),
                "orgUnitId": u.unit_id,
                "orgUnitExternalKey": None,
                "orgUnitName": u.name,
                "parentOrgUnitId": u.parent_id,
                "displayOrder": u.order,
                "displayLevel": self.level(u),
                "visible": True,
            }
            for u in ordered
        ]

    def group_rows(self, domain_id: str, page_max: int) -> list[dict[str, object]]:
        """Every group as GET /groups lists it. The documented `members` field is cut at
        one page here: the docs do not say the list carries a large group's every member,
        so a client must read GET /groups/{groupId}/members (docs/lineworks.md)."""
        return [
            {
                "domainId": int(domain_id),
                "groupId": g.group_id,
                "groupName": g.name,
                "groupExternalKey": None,
                "visible": True,
                "members": [_member(t, i) for t, i in g.members[:page_max]],
            }
            for g in self.groups.values()
        ]


def _organization(domain_id: str, primary: bool, units: list[Unit]) -> dict[str, object]:
    return {
        "domainId": int(domain_id),
        "primary": primary,
        "orgUnits": [
            {
                "orgUnitId": u.unit_id,
                "orgUnitName": u.name,
                "primary": i == 0,
                "isManager": False,
                "visible": True,
                "useTeamFeature": True,
            }
            for i, u in enumerate(units)
        ],
    }


def _member(kind: str, member_id: str) -> dict[str, object]:
    return {"id": member_id, "type": kind, "externalKey": None}


def seed_departments(data: OrgData, emails: Sequence[str], user_id: Callable[[str], str]) -> None:
    """The demo company's structure over `emails` (its directory, in seeding order): the
    named members as DEPARTMENTS says, the rest spread over the leaf units; a group
    partner-support (erin and 総務部) and a group all-support holding partner-support."""
    for path, _ in DEPARTMENTS:
        parent, _, name = path.rpartition("/")
        data.add_unit(name, parent or None)
    named = {user: path for path, users in DEPARTMENTS for user in users}
    extra = itertools.cycle(_LEAVES)
    for email in emails:
        local = email.split("@")[0]
        data.place(email, named[local] if local in named else next(extra))
    erin = next((e for e in emails if e.startswith("erin@")), None)
    members = [("USER", user_id(erin))] if erin else []
    partner = data.add_group(PARTNER_SUPPORT, [*members, ("ORGUNIT", data.unit("総務部").unit_id)])
    data.add_group("all-support", [("GROUP", partner.group_id)])


def encode_cursor(offset: int) -> str:
    """A page cursor. Real cursors are base64 with + / = in them: a client that forgets to
    percent-encode them sends spaces instead of pluses, and the emulator refuses that cursor."""
    return base64.b64encode(b"\xfb\xff\xbe" + str(offset).encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The offset a cursor stands for; ValueError for a foreign or mangled one."""
    raw = base64.b64decode(cursor, validate=True)
    if not raw.startswith(b"\xfb\xff\xbe"):
        raise ValueError("foreign cursor")
    return int(raw[3:].decode())


def listing(
    rows: Sequence[dict[str, object]], key: str, query: dict[str, list[str]], page_max: int
) -> tuple[int, dict[str, object]]:
    """One page of a documented list: `count` 1..page_max (default 100), `cursor`."""
    try:
        count = int(query.get("count", ["100"])[0])
        cursor = query.get("cursor", [None])[0]
        offset = decode_cursor(cursor) if cursor is not None else 0
    except ValueError:
        return 400, {"code": "INVALID_PARAMETER", "description": "bad count/cursor"}
    if not 1 <= count <= page_max:
        return 400, {"code": "INVALID_PARAMETER", "description": f"count 1..{page_max}"}
    end = offset + count
    meta = {"nextCursor": encode_cursor(end)} if end < len(rows) else {}
    return 200, {key: list(rows[offset:end]), "responseMetaData": meta}


def route(
    data: OrgData,
    domain_id: str,
    path: str,
    query: dict[str, list[str]],
    page_max: int,
    scopes: frozenset[str],
) -> tuple[int, dict[str, object]] | None:
    """GET /orgunits, /groups, /groups/{groupId}/members; None for any other path."""
    if path == "/v1.0/orgunits":
        needed = UNIT_SCOPES
    elif path == "/v1.0/groups" or (path.startswith("/v1.0/groups/") and path.endswith("/members")):
        needed = GROUP_SCOPES
    else:
        return None
    if not scopes & needed:  # the answer's code and wording: ASSUMPTION (docs/lineworks.md)
        return 403, {"code": "INSUFFICIENT_SCOPE", "description": "the token lacks the scope"}
    if query.get("domainId", [domain_id])[0] != domain_id:
        return 403, {"code": "FORBIDDEN", "description": "another domain"}
    if path == "/v1.0/orgunits":
        return listing(data.unit_rows(domain_id), "orgUnits", query, page_max)
    if path == "/v1.0/groups":
        return listing(data.group_rows(domain_id, page_max), "groups", query, page_max)
    group = data.groups.get(unquote(path.split("/")[3]))
    if group is None:
        return 404, {"code": "NOT_FOUND", "description": "no such group"}
    rows = [_member(t, i) for t, i in group.members]
    return listing(rows, "members", query, page_max)

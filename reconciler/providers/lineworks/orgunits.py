"""The org chart through the Directory API: org units, who belongs to each, groups and theirs.

Four lists, each paged by `cursor` (`count` at most 100; docs/lineworks.md#org-units-and-groups):

- `GET /users` (read for the directory anyway) carries each user's units in
  `organizations[].orgUnits[].orgUnitId`, so unit membership costs no request of its own;
- `GET /orgunits`: every unit with its `parentOrgUnitId`;
- `GET /groups`: every group's id and name; its `members` field is not relied on (the docs do
  not say a large group's every member is in the list), so
- `GET /groups/{groupId}/members` per group: `id` and `type` (USER, ORGUNIT, GROUP); only
  of the groups a desired file names (and the groups within them), when the caller says
  which: a tenant of 1,000 groups costs a file naming one a single members request.

A read is complete or raises TenantError: a page that fails (after the client's retries), a
unit or user named but not listed (the directory changed while it was read) or a missing
scope never yields a smaller chart, since a smaller chart would plan removals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reconciler.errors import TenantError
from reconciler.i18n import Msg, Said, anded
from reconciler.orgchart import Group, OrgChart, OrgUnit
from reconciler.providers.lineworks.client import ApiError, LineWorksClient

__all__ = ["ChartCost", "People", "check_scopes", "read_chart", "read_people"]

UNITS, GROUPS, MEMBERS = "GET /orgunits", "GET /groups", "GET /groups/{groupId}/members"
#: Any one of these lets a token read the list (orgunit-list, group-list, group-member-list).
_READERS = {
    UNITS: ("orgunit.read", frozenset({"directory", "directory.read", "orgunit", "orgunit.read"})),
    GROUPS: ("group.read", frozenset({"directory", "directory.read", "group", "group.read"})),
}
_PAGE = 100  # the documented `count` maximum of every list here


@dataclass(frozen=True)
class People:
    """What one read of `GET /users` says about people."""

    emails: frozenset[str]  # the directory: deleted and pending users left out
    by_id: Mapping[str, str]  # every listed user's userId → login email (left-out ones too)
    units: Mapping[str, tuple[str, ...]]  # directory member → ids of this domain's units


@dataclass(frozen=True)
class ChartCost:
    """What reading the org chart took: requests sent (retries included) and seconds."""

    requests: int
    seconds: float


def read_people(client: LineWorksClient, domain_id: str) -> People:
    """Every user of `GET /users` (all pages), with the units of `domain_id` each belongs to."""
    emails: set[str] = set()
    by_id: dict[str, str] = {}
    units: dict[str, tuple[str, ...]] = {}
    for user in client.pages("/users", "GET /users", "users", _query(domain_id)):
        if not isinstance(user, dict) or not user.get("email"):
            continue
        email = str(user["email"]).lower()
        if user.get("userId"):
            by_id[str(user["userId"])] = email
        if user.get("isDeleted") or user.get("isPending"):
            continue  # isDeleted, isPending: user-get (ja), verified
        emails.add(email)
        mine = tuple(_unit_ids(user, domain_id))
        if mine:
            units[email] = mine
    return People(frozenset(emails), by_id, units)


def _unit_ids(user: dict[str, Any], domain_id: str) -> Iterator[str]:
    """orgUnitIds of the user's `organizations[]` entry for this domain (a member of a group
    company may hold positions in other domains too: user-get, 原職・兼職)."""
    for org in user.get("organizations") or ():
        if not isinstance(org, dict) or str(org.get("domainId", domain_id)) != domain_id:
            continue
        for unit in org.get("orgUnits") or ():
            if isinstance(unit, dict) and unit.get("orgUnitId"):
                yield str(unit["orgUnitId"])


def check_scopes(scope: str) -> None:
    """Refuse, before any request, a token scope that cannot read units or groups."""
    granted = set(re.split(r"[\s,]+", scope.strip()))
    missing = [name for name, readers in _READERS.values() if not granted & readers]
    if missing:
        raise TenantError(
            Said.of(
                "reading org units and groups needs the OAuth scope {scopes} (or "
                "`directory.read`), and the tenant's scope is {scope!r}: tick it for the app "
                "in the Developer Console (API 2.0 > the app > OAuth Scopes) and add it to the "
                "tenant URI, e.g. `lineworks:?scope=user,orgunit.read,group.read` "
                "(docs/lineworks.md)",
                scopes=anded([f"`{m}`" for m in missing]),
                scope=scope,
            )
        )


def read_chart(
    client: LineWorksClient, domain_id: str, people: People, wanted: frozenset[str] | None = None
) -> OrgChart:
    """Units, their direct members (from `people`) and groups with their members: those
    `wanted` names and the groups within them (every group when None)."""
    units: dict[str, OrgUnit] = {}
    for row in _rows(client, "/orgunits", UNITS, "orgUnits", domain_id):
        if isinstance(row, dict) and row.get("orgUnitId"):
            uid = str(row["orgUnitId"])
            parent = row.get("parentOrgUnitId")
            units[uid] = OrgUnit(
                uid, str(row.get("orgUnitName", "")), str(parent) if parent else None
            )
    for unit in units.values():
        if unit.parent_id is not None and unit.parent_id not in units:
            raise _changed(
                Msg.of(
                    "org unit {name!r} sits under {parent}, which was not listed",
                    name=unit.name,
                    parent=unit.parent_id,
                )
            )
    members: dict[str, set[str]] = {}
    for email, ids in people.units.items():
        for uid in ids:
            if uid not in units:
                raise _changed(
                    Msg.of(
                        "{email} belongs to org unit {unit}, which was not listed",
                        email=email,
                        unit=uid,
                    )
                )
            members.setdefault(uid, set()).add(email)
    chart = OrgChart(units, {uid: frozenset(m) for uid, m in members.items()})
    names = _group_names(client, domain_id, wanted)
    listed = _group_members(client, domain_id, names, wanted)
    groups = {
        names[gid]: Group(gid, names[gid], _members_of(gid, listed, people, chart))
        for gid in listed
    }
    unread = frozenset(name for gid, name in names.items() if gid not in listed)
    return OrgChart(chart.units, chart.unit_members, groups, unread)


def _group_names(
    client: LineWorksClient, domain_id: str, wanted: frozenset[str] | None
) -> dict[str, str]:
    """Every group's name by its id; two groups of a name a file may choose refuse."""
    names: dict[str, str] = {}
    seen: set[str] = set()
    for row in _rows(client, "/groups", GROUPS, "groups", domain_id):
        if not isinstance(row, dict) or not row.get("groupId"):
            continue
        gid, name = str(row["groupId"]), str(row.get("groupName", ""))
        if name in seen and (wanted is None or name in wanted):  # chosen by name in a file
            raise TenantError(
                Said.of(
                    "two directory groups are named {name!r}: rename one in the admin "
                    "console, since include_groups names a group by its name",
                    name=name,
                )
            )
        seen.add(name)
        names[gid] = name
    return names


def _group_members(
    client: LineWorksClient, domain_id: str, names: Mapping[str, str], wanted: frozenset[str] | None
) -> dict[str, list[tuple[str, str]]]:
    """(type, id) of each member of the wanted groups and of the groups within them, each
    group read once (in list order, then as found within)."""
    order = [gid for gid, name in names.items() if wanted is None or name in wanted]
    listed: dict[str, list[tuple[str, str]]] = {}
    for gid in order:  # grows as groups within groups are found
        if gid in listed:
            continue
        path = f"/groups/{quote(gid, safe='')}/members"
        listed[gid] = [
            (str(m.get("type", "")).upper(), str(m.get("id", "")))
            for m in _rows(client, path, MEMBERS, "members", domain_id)
            if isinstance(m, dict)
        ]
        order += [mid for kind, mid in listed[gid] if kind == "GROUP" and mid in names]
    return listed


def _members_of(
    gid: str, listed: Mapping[str, list[tuple[str, str]]], people: People, chart: OrgChart
) -> frozenset[str]:
    """A group's members as login emails: its users, its units with their sub-units
    (ASSUMPTION, docs/lineworks.md), and the members of the groups within it, however deep
    (a cycle of groups adds nothing twice)."""
    found: set[str] = set()
    seen, stack = {gid}, [gid]
    while stack:
        current = stack.pop()
        for kind, mid in listed[current]:
            if kind == "USER":
                email = people.by_id.get(mid) or (mid.lower() if "@" in mid else None)
                if email is None:
                    raise _changed(
                        Msg.of(
                            "group {group} holds user {user}, not listed by GET /users",
                            group=current,
                            user=mid,
                        )
                    )
                if email in people.emails:  # deleted or pending users hold no permission
                    found.add(email)
            elif kind == "ORGUNIT":
                if mid not in chart.units:
                    raise _changed(
                        Msg.of(
                            "group {group} holds org unit {unit}, which was not listed",
                            group=current,
                            unit=mid,
                        )
                    )
                found |= chart.members_under(mid)
            elif kind == "GROUP":
                if mid not in listed:
                    raise _changed(
                        Msg.of(
                            "group {group} holds group {member}, which was not listed",
                            group=current,
                            member=mid,
                        )
                    )
                if mid not in seen:
                    seen.add(mid)
                    stack.append(mid)
            else:
                raise TenantError(
                    Said.of(
                        "LINE WORKS listed a member of group {group} of unknown type {kind!r}",
                        group=current,
                        kind=kind,
                    )
                )
    return frozenset(found)


def _rows(
    client: LineWorksClient, path: str, operation: str, key: str, domain_id: str
) -> Iterator[Any]:
    """Every item of one list; a refusal becomes a TenantError saying what to do."""
    try:
        yield from client.pages(path, operation, key, _query(domain_id))
    except ApiError as exc:
        scope = _READERS.get(operation, _READERS[GROUPS])[0]
        hint = (
            Msg.of(
                "the app's token lacks the `{scope}` scope (or `directory.read`): tick it in "
                "the Developer Console (API 2.0 > the app > OAuth Scopes) and add it to the "
                "tenant's scope=",
                scope=scope,
            )
            if exc.refusal.kind == "missing_scope" or exc.status in (401, 403)
            else Msg.of("plan again later")
        )
        raise TenantError(
            Said.of(
                "the org chart was not read: LINE WORKS refused {operation} ({answer}); {hint}",
                operation=operation,
                answer=exc.refusal.answer,
                hint=hint,
            )
        ) from exc


def _query(domain_id: str) -> dict[str, str | int]:
    return {"domainId": domain_id, "count": _PAGE}


def _changed(what: Msg) -> TenantError:
    return TenantError(
        Said.of(
            "the org chart was not read whole: {what} (the directory changed while it was "
            "read); plan again",
            what=what,
        )
    )

"""The local tenant's org chart: org units and directory groups read as an OrgChart, and
the units and groups an HR command names found in it.

Reading costs one query per table whatever the company's size: each unit's and group's
members come back as one JSON array, as the directory does (rows.emails).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from reconciler.errors import TenantRuleError
from reconciler.i18n import Messages, Said, Told
from reconciler.orgchart import PATH_SEPARATOR, Group, OrgChart, OrgUnit

_UNITS = "SELECT id, name, parent_id FROM orgunits"
_UNIT_MEMBERS = "SELECT unit_id, {members} FROM orgunit_members GROUP BY unit_id"
_GROUPS = (
    "SELECT g.id, g.name, (SELECT {members} FROM group_members m WHERE m.group_id = g.id)"
    " FROM directory_groups g"
)
_GROUP_NAMES = "SELECT id, name FROM directory_groups"
_JSON = "json_group_array(email)"
_LINES = "group_concat(email, char(10))"  # an SQLite without JSON: emails hold no newline


def read_chart(conn: sqlite3.Connection, legacy: bool, *, members: bool = True) -> OrgChart:
    """Every org unit and group with its members, from the caller's one read transaction;
    without `members`, the structure alone (what naming a unit or group needs)."""
    units = {
        str(uid): OrgUnit(str(uid), name, None if parent is None else str(parent))
        for uid, name, parent in conn.execute(_UNITS)
    }
    if not members:
        groups = {name: Group(str(gid), name) for gid, name in conn.execute(_GROUP_NAMES)}
        return OrgChart(units=units, groups=groups)
    unit_members = {
        str(uid): found for (uid,), found in _grouped(conn, _UNIT_MEMBERS, legacy) if found
    }
    groups = {
        name: Group(str(gid), name, found) for (gid, name), found in _grouped(conn, _GROUPS, legacy)
    }
    return OrgChart(units=units, unit_members=unit_members, groups=groups)


def memberships(
    conn: sqlite3.Connection, chart: OrgChart, spelled: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paths of the units and the names of the groups the member belongs to, sorted."""
    units = conn.execute("SELECT unit_id FROM orgunit_members WHERE email = ?", (spelled,))
    groups = conn.execute(
        "SELECT g.name FROM group_members m JOIN directory_groups g ON g.id = m.group_id"
        " WHERE m.email = ?",
        (spelled,),
    )
    return (
        tuple(sorted(chart.path(str(uid)) for (uid,) in units)),
        tuple(sorted(name for (name,) in groups)),
    )


def _grouped(
    conn: sqlite3.Connection, sql: str, legacy: bool
) -> Iterator[tuple[tuple[Any, ...], frozenset[str]]]:
    """Rows of `sql`: the leading columns, and the last one (its members) as a set."""
    try:
        rows = conn.execute(sql.format(members=_JSON)).fetchall()
        split = _from_json
    except sqlite3.OperationalError:
        rows = conn.execute(sql.format(members=_LINES)).fetchall()
        split = _from_lines
    for *head, text in rows:
        found = split(text)
        yield tuple(head), frozenset(e.lower() for e in found) if legacy else frozenset(found)


def _from_json(text: str | None) -> list[str]:
    return [] if text is None else list(json.loads(text))


def _from_lines(text: str | None) -> list[str]:
    return [] if not text else text.split("\n")


def find_unit(chart: OrgChart, text: str) -> str:
    """The id of the unit `text` names: a path from the top (営業部/東日本), or a name only
    one unit has. Refused, with the nearest paths, when none or several match."""
    wanted = PATH_SEPARATOR.join(part.strip() for part in text.strip().split(PATH_SEPARATOR))
    paths = {chart.path(uid): uid for uid in chart.units}
    if wanted in paths:
        return paths[wanted]
    named = sorted(path for path, uid in paths.items() if chart.units[uid].name == wanted)
    if len(named) == 1:
        return paths[named[0]]
    if named:
        raise TenantRuleError(
            Said.of(
                "org unit {name!r} is ambiguous: {n} units have that name ({paths}); "
                "write its path",
                name=wanted,
                n=len(named),
                paths=", ".join(named),
            )
        )
    names = Counter(unit.name for unit in chart.units.values())
    choices = [*paths, *(name for name, count in names.items() if count == 1)]
    raise TenantRuleError(_absent("org unit", wanted, choices))


def find_group(chart: OrgChart, name: str) -> Group:
    """The directory group called `name`; refused, with the nearest names, if none is."""
    group = chart.groups.get(name.strip())
    if group is None:
        raise TenantRuleError(_absent("group", name, chart.groups))
    return group


def _absent(kind: str, word: str, choices: Iterable[str]) -> Said:
    """No `kind` ("org unit", "group") called `word`: with the closest choices, or what
    there is when few are."""
    import difflib  # only an HR command's refusal needs it

    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    shown = word.strip() if kind == "group" else word
    if close:
        meant = Told(lambda t: _either(close, t))
        if kind == "group":
            return Said.of(
                "no group {name!r} in the tenant; did you mean {close}?", name=shown, close=meant
            )
        return Said.of(
            "no org unit {name!r} in the tenant; did you mean {close}?", name=shown, close=meant
        )
    if not options:
        if kind == "group":
            return Said.of("no group {name!r} in the tenant (it has none)", name=shown)
        return Said.of("no org unit {name!r} in the tenant (it has none)", name=shown)
    some = ", ".join(options[:10]) + (", …" if len(options) > 10 else "")
    if kind == "group":
        return Said.of("no group {name!r} in the tenant (it has {names})", name=shown, names=some)
    return Said.of("no org unit {name!r} in the tenant (it has {names})", name=shown, names=some)


def _either(choices: list[str], t: Messages) -> str:
    """'a' or 'b' or 'c', in `t`'s language."""
    text = repr(choices[0])
    for choice in choices[1:]:
        text = t._("{choices} or {choice}", choices=text, choice=repr(choice))
    return text

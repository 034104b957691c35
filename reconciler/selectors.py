"""Member selectors resolved against the tenant's org chart: who each org unit and group puts
on a list (docs/departments.md).

`resolve` fills each list's `MembersSpec.selected`; the effective list is then
`MembersSpec.wanted`, include plus the selected minus exclude, and `MembersSpec.why_listed` names
the entry behind each member. Imported only for a file that uses a selector: a plain list
costs nothing here.

An org unit is written by name (営業部) or by path from the top (営業部/東日本; /営業部 for a
top-level unit whose name another unit shares too). A name two units share is ambiguous and
must be written as a path; an unknown name is an error at its FILE:LINE:COL with the closest
names the directory has.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from reconciler.errors import InputError, Problem
from reconciler.i18n import N_, Said
from reconciler.model import DesiredChannel, DesiredState, MembersSpec, SelectorRule
from reconciler.orgchart import PATH_SEPARATOR, OrgChart
from reconciler.yamlpaths import format_path

__all__ = ["Why", "covering_units", "explain", "resolve"]

_SHOWN_PATHS = 5  # an ambiguous name lists this many of its paths


def resolve(desired: DesiredState, chart: OrgChart, directory: frozenset[str]) -> DesiredState:
    """`desired` with every list's selectors resolved; InputError for names the chart lacks.

    Only members of the `directory` are selected: a directory's org chart and member list are
    read apart, and a member the tenant does not have cannot be listed.
    """
    units = _UnitIndex(chart)
    problems: list[Problem] = []
    channels: dict[object, DesiredChannel] = {}
    for channel, spec in desired.channels.items():
        members = spec.members
        if members is None or not members.uses_selectors:
            channels[channel] = spec
            continue
        selected: list[tuple[SelectorRule, str, frozenset[str]]] = []
        base = ("external_messaging", channel.value, "members")
        for i, name in enumerate(members.include_orgunits):
            found = units.find(name)
            if isinstance(found, tuple):
                problems.append(_problem(desired, (*base, "include_orgunits", i), found))
            else:
                selected.append(("orgunit", name, found & directory))
        for i, name in enumerate(members.include_groups):
            group = chart.groups.get(name)
            if group is None:
                why = _unknown(_NO_GROUP, name, chart.group_names)
                problems.append(_problem(desired, (*base, "include_groups", i), why))
            else:
                selected.append(("group", name, group.members & directory))
        channels[channel] = replace(spec, members=replace(members, selected=tuple(selected)))
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.line, p.column)))
    return replace(desired, channels=channels)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Why:
    """One member of a resolved list and the first entry that lists them."""

    email: str
    rule: str  # include, orgunit or group
    name: str  # the entry as written
    line: int | None


def explain(desired: DesiredState, channel: str, members: MembersSpec) -> Iterator[Why]:
    """Each member of a resolved list, sorted, with the entry behind them and its line."""
    for email in sorted(members.wanted):
        rule, name = members.why_listed(email)
        yield Why(email, rule, name, desired.lines.line(channel, rule, name))


def covering_units(
    listed: frozenset[str], chart: OrgChart, directory: frozenset[str]
) -> tuple[list[str], frozenset[str]]:
    """`lwr export --selectors`: the units wholly on `listed` (the highest of them, as a
    selector would be written: the name, or the path when the name repeats) and the members
    no such unit covers. Resolved again, they select exactly `listed`."""
    index = _UnitIndex(chart)
    children: dict[str | None, list[str]] = {}
    for unit_id in sorted(chart.units, key=chart.path):  # top-down, in path order
        parent = chart.units[unit_id].parent_id
        children.setdefault(parent if parent in chart.units else None, []).append(unit_id)
    chosen: list[str] = []
    covered: set[str] = set()
    stack = list(reversed(children.get(None, [])))
    seen: set[str] = set()
    while stack:
        unit_id = stack.pop()
        if unit_id in seen:  # a cycle in a broken directory: visit each unit once
            continue
        seen.add(unit_id)
        members = chart.members_under(unit_id) & directory
        if members and members <= listed:
            chosen.append(index.written(unit_id))
            covered |= members
            continue  # its sub-units are in it
        stack.extend(reversed(children.get(unit_id, [])))
    return chosen, listed - covered


class _UnitIndex:
    """Org units by path and by name, built once per plan."""

    def __init__(self, chart: OrgChart) -> None:
        self.chart = chart
        self.by_path: dict[str, str] = {}
        self.by_name: dict[str, list[str]] = {}
        for unit_id, unit in chart.units.items():
            self.by_path[chart.path(unit_id)] = unit_id
            self.by_name.setdefault(unit.name, []).append(unit_id)

    def written(self, unit_id: str) -> str:
        """How a selector names the unit: its name when no other unit has it, else its path."""
        name = self.chart.units[unit_id].name
        if len(self.by_name.get(name, ())) == 1:
            return name
        return _absolute(self.chart.path(unit_id))

    def find(self, written: str) -> frozenset[str] | tuple[Said, Said]:
        """The members under the unit `written` names, or why it names none."""
        if PATH_SEPARATOR in written:
            unit_id = self.by_path.get(written.strip(PATH_SEPARATOR))
            if unit_id is None:
                return _unknown(_NO_UNIT, written, sorted(self.by_path))
            return self.chart.members_under(unit_id)
        ids = self.by_name.get(written, [])
        if len(ids) > 1:
            paths = sorted(self.chart.path(i) for i in ids)
            shown = ", ".join(_absolute(p) for p in paths[:_SHOWN_PATHS])
            more = len(paths) - _SHOWN_PATHS
            named = Said.counted(
                "{n} org unit is named {name}",
                "{n} org units are named {name}",
                len(paths),
                name=repr(written),
            )
            if more > 0:
                return named, Said.counted(
                    "write the one you mean as a path: {paths} and {n} more",
                    "write the one you mean as a path: {paths} and {n} more",
                    more,
                    paths=shown,
                )
            return named, Said.of("write the one you mean as a path: {paths}", paths=shown)
        if not ids:
            return _unknown(_NO_UNIT, written, sorted({*self.by_name, *self.by_path}))
        return self.chart.members_under(ids[0])


def _absolute(path: str) -> str:
    """A top-level unit's path is its name; the leading '/' makes it a path."""
    return path if PATH_SEPARATOR in path else PATH_SEPARATOR + path


_NO_UNIT = N_("no org unit {name} in the directory")
_NO_GROUP = N_("no group {name} in the directory")


def _unknown(message: str, written: str, names: list[str]) -> tuple[Said, Said]:
    """(message, hint) for a name the directory lacks, with the closest it has."""
    close = difflib.get_close_matches(written, names, n=1, cutoff=0.6)
    hint = (
        Said.of("did you mean {close}? write the name the directory shows", close=repr(close[0]))
        if close
        else Said.of("write the name the directory shows")
    )
    return Said.of(message, name=repr(written)), hint


def _problem(desired: DesiredState, path: tuple[str | int, ...], why: tuple[Said, Said]) -> Problem:
    line, column = desired.locate(path) if desired.locate else (0, 0)
    return Problem(desired.source, line, column, format_path(path), *why)

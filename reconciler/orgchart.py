"""The company's structure as the tenant's directory knows it: org units and groups.

Member selectors in a desired file (`include_orgunits`, `include_groups`) are resolved
against this. Both tenant kinds provide it (`Provider.org_chart()`): the local tenant from
its own tables, `lineworks:` from the Directory API. It is read only when the file uses a
selector, so a plain list costs nothing more.

Units are keyed by id, because names repeat (two companies' 総務部, or 東日本 under both 営業部
and 開発部); a path joins names from the top with "/" (営業部/東日本) and is unique.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["PATH_SEPARATOR", "Group", "OrgChart", "OrgUnit"]

#: Between a unit's name and its sub-unit's in a path: 営業部/東日本.
PATH_SEPARATOR = "/"


@dataclass(frozen=True)
class OrgUnit:
    """One org unit (部署): its id in the tenant, its name, and the unit it sits under."""

    id: str
    name: str
    parent_id: str | None = None  # None for a top-level unit


@dataclass(frozen=True)
class Group:
    """One directory group, by its name, with the login emails of its members."""

    id: str
    name: str
    members: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OrgChart:
    """Org units with their own members, and groups with theirs.

    `unit_members` holds each unit's direct members only (lowercased login emails); a
    member may belong to several units. `members_under` adds the sub-units'.
    """

    units: Mapping[str, OrgUnit] = field(default_factory=dict)  # by id
    unit_members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # by unit id
    groups: Mapping[str, Group] = field(default_factory=dict)  # by name
    #: Groups the directory has whose members were not read (`org_chart(groups=…)` asked for
    #: others): their names still answer "did you mean", and nothing takes them for empty.
    unread_groups: frozenset[str] = frozenset()

    @cached_property
    def _children(self) -> Mapping[str | None, tuple[str, ...]]:
        """Each unit's sub-units, by name then id; a unit whose parent is not in the chart
        is a top-level one (key None)."""
        children: dict[str | None, list[str]] = {}
        for unit in self.units.values():
            parent = unit.parent_id if unit.parent_id in self.units else None
            children.setdefault(parent, []).append(unit.id)

        def by_name(uid: str) -> tuple[str, str]:
            return self.units[uid].name, uid

        return {parent: tuple(sorted(ids, key=by_name)) for parent, ids in children.items()}

    def tree(self) -> list[tuple[str, int]]:
        """Every unit once with its depth, parents before children, siblings by name (a
        cycle in a broken directory: each unit still once)."""
        found: list[tuple[str, int]] = []
        seen: set[str] = set()
        stack = [(uid, 0) for uid in reversed(self._children.get(None, ()))]
        while stack:
            uid, depth = stack.pop()
            if uid in seen:
                continue
            seen.add(uid)
            found.append((uid, depth))
            stack += [(child, depth + 1) for child in reversed(self._children.get(uid, ()))]
        return found

    @property
    def group_names(self) -> list[str]:
        """Every group the directory has, read or not, sorted."""
        return sorted({*self.groups, *self.unread_groups})

    def path(self, unit_id: str) -> str:
        """The unit's names from the top, joined with '/': 営業部/東日本."""
        names: list[str] = []
        seen: set[str] = set()
        current: str | None = unit_id
        while current is not None and current not in seen:  # a cycle stops, never loops
            seen.add(current)
            unit = self.units[current]
            names.append(unit.name)
            current = unit.parent_id if unit.parent_id in self.units else None
        return PATH_SEPARATOR.join(reversed(names))

    def descendants(self, unit_id: str) -> Iterator[str]:
        """The unit's id and those of every unit under it, top-down."""
        stack = [unit_id]
        seen: set[str] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            yield current
            stack.extend(reversed(self._children.get(current, ())))

    def members_under(self, unit_id: str) -> frozenset[str]:
        """Members of the unit and of all its sub-units."""
        found: set[str] = set()
        for unit in self.descendants(unit_id):
            found.update(self.unit_members.get(unit, ()))
        return frozenset(found)

    def units_of(self, email: str) -> tuple[str, ...]:
        """Paths of the units a member belongs to directly, sorted."""
        return tuple(
            sorted(self.path(uid) for uid, members in self.unit_members.items() if email in members)
        )

"""Where a desired file writes each thing a planned change can be traced to (`Because.line`).

Found in one pass while the file's node tree is at hand (`FileLines.read`): the line of every
key of each channel, and one array of lines per members list, in the list's order. Nothing is
looked up per member until a change asks; then one table per list maps an entry to its
index. A saved plan's desired document is rebuilt from JSON, which has no lines worth
quoting: `SavedLines` takes them from the plan's own changes, so a fresh plan of the same
document says the same lines (and an edit of one change's line no longer matches).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from operator import attrgetter
from typing import Any

from yaml.nodes import SequenceNode

from reconciler.model import Rule
from reconciler.yamlpaths import Locator

__all__ = ["LISTS", "FileLines", "SavedLines"]

#: The members lists of a channel, by the rule each entry of them is: YAML key → rule.
LISTS: Mapping[str, Rule] = {
    "include": "include",
    "include_orgunits": "orgunit",
    "include_groups": "group",
    "exclude": "exclude",
}
_LINE = attrgetter("start_mark.line")
_EM = "external_messaging"


class FileLines:
    """Lines of a file that was read: keys by (channel, key), list entries by index."""

    def __init__(
        self,
        keys: dict[tuple[str, str], int],
        lists: dict[tuple[str, Rule], tuple[list[Any], _Spaced | array[int]]],
    ) -> None:
        self._keys = keys
        self._lists = lists
        self._index: dict[tuple[str, Rule], dict[str, int]] = {}

    @classmethod
    def read(cls, data: Any, locate: Locator) -> FileLines:
        """Every channel key's line and every members list's lines, from the node tree."""
        keys: dict[tuple[str, str], int] = {}
        lists: dict[tuple[str, Rule], tuple[list[Any], _Spaced | array[int]]] = {}
        channels = data.get(_EM) if isinstance(data, dict) else None
        for channel, spec in channels.items() if isinstance(channels, dict) else ():
            if not isinstance(spec, dict):
                continue
            for key, value in spec.items():
                keys[channel, key] = locate((_EM, channel, key))[0]
                if isinstance(value, dict):
                    for sub in value:
                        keys[channel, f"{key}.{sub}"] = locate((_EM, channel, key, sub))[0]
            members = spec.get("members")
            for key, rule in LISTS.items():
                items = members.get(key) if isinstance(members, dict) else None
                if isinstance(items, list):
                    node = locate.sequence((_EM, channel, "members", key))
                    if node is not None:
                        lists[channel, rule] = (items, _item_lines(node))
        return cls(keys, lists)

    def line(self, channel: str, rule: Rule, name: str | None) -> int | None:
        """See model.SourceLines."""
        if rule == "setting":
            found = self._keys.get((channel, name or ""))
        elif rule == "not_selected":
            found = self._keys.get((channel, "members"))
        else:
            return self._entry_line(channel, rule, name or "")
        return found or None

    def _entry_line(self, channel: str, rule: Rule, name: str) -> int | None:
        listed = self._lists.get((channel, rule))
        if listed is None:
            return None
        items, lines = listed
        index = self._index.get((channel, rule))
        if index is None:  # once per list, and only when a change names one of its entries
            caseless = rule in ("include", "exclude")  # emails: case does not matter
            index = {}
            for i, item in enumerate(items):
                if isinstance(item, str):
                    index.setdefault(item.lower() if caseless else item, i)
            self._index[channel, rule] = index
        at = index.get(name)
        return lines[at] + 1 if at is not None and at < len(lines) else None


class _Spaced:
    """The 0-based lines of a list written one item a line (step 1) or on one line (step 0):
    two nodes tell, so a 100k-member list costs nothing to locate."""

    def __init__(self, first: int, step: int, count: int) -> None:
        self.first, self.step, self.count = first, step, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> int:
        return self.first + self.step * i


def _item_lines(node: SequenceNode) -> _Spaced | array[int]:
    """Each item's 0-based line. Read from the first and the last item alone when they tell:
    in block style every item starts a line of its own, so N items over exactly N lines are
    one a line; in either style, first and last on one line means all are. Otherwise (blank
    lines or comments between items, a multi-line flow list) from every item: 100k lookups
    cost ~3 % of a plan, which the usual layout does without."""
    items: list[Any] = node.value
    if not items:
        return _Spaced(0, 0, 0)
    first, last = _LINE(items[0]), _LINE(items[-1])
    if first == last:
        return _Spaced(first, 0, len(items))
    if not node.flow_style and last - first == len(items) - 1:
        return _Spaced(first, 1, len(items))
    return array("i", map(_LINE, items))


class SavedLines:
    """Lines as a saved plan's changes quote them: (channel, rule, name) → line."""

    def __init__(self, lines: dict[tuple[str, str, str | None], int]) -> None:
        self._lines = lines

    @classmethod
    def of(cls, changes: Iterable[Mapping[str, Any]]) -> SavedLines:
        """From a schema-checked saved plan's change documents."""
        lines: dict[tuple[str, str, str | None], int] = {}
        for change in changes:
            because = change.get("because")
            if isinstance(because, dict) and isinstance(because.get("line"), int):
                rule = because["rule"]
                if rule == "left":  # the planner asks for the selector's line (model.Because)
                    rule = because.get("via", rule)
                lines.setdefault((change["channel"], rule, because["name"]), because["line"])
        return cls(lines)

    def line(self, channel: str, rule: Rule, name: str | None) -> int | None:
        """See model.SourceLines."""
        return self._lines.get((channel, rule, name))

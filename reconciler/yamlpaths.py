"""Paths into a YAML document: how they are written in messages, and where they are in the file.

`format_path` spells a path as problems show it (`external_messaging.line.members.include[3]`);
`Locator` finds the line and column a path is written at, for every problem found after
loading (schema, semantics).
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.yamlload import LOADER

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """`("external_messaging", "line", "members", "include", 3)` → `...members.include[3]`."""
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif seg.isidentifier() or re.fullmatch(r"[A-Za-z_][\w-]*", seg):
            out.append(f".{seg}" if out else seg)
        else:
            out.append("[" + repr(seg) + "]")
    return "".join(out)


class Locator:
    """Finds where a path is written in the file, walking the node tree only when asked.

    Mapping entries resolve to their key (where the entry starts), list items to the item.
    A path that does not exist resolves to its nearest existing ancestor. A deferred locator
    keeps only the text and re-parses it on first use, so a loaded DesiredState does not hold
    a node tree (~350 bytes per list item: 350 MB at 1M members) for the rare error that needs
    a position.
    """

    def __init__(self, root: Node | None = None, *, text: str | None = None) -> None:
        self._root = root
        self._text = text
        self._indexes: dict[Path, dict[str, int]] = {}
        # Per mapping node (by id): key -> (key node, value node), first occurrence; built
        # on first use so that locating each of 100k unknown keys is not 100k scans.
        self._keys: dict[int, dict[str, tuple[Node, Node]]] = {}

    @classmethod
    def deferred(cls, text: str) -> Locator:
        """A locator that parses `text` again the first time a position is asked for."""
        return cls(None, text=text)

    def _node(self) -> Node | None:
        if self._root is None and self._text is not None:
            try:
                self._root = yaml.compose(self._text, Loader=LOADER)
            except (yaml.YAMLError, RecursionError):
                self._text = None  # cannot happen for text that loaded once; stay at 0:0
            else:
                self._text = None
        return self._root

    def _walk(self, path: Path) -> list[tuple[Node, Node]]:
        """(node, node whose mark locates it) for the root and each path segment that exists."""
        node = self._node()
        if node is None:
            return []
        steps = [(node, node)]
        for seg in path:
            if isinstance(node, MappingNode) and isinstance(seg, str):
                found = self._entries(node).get(seg)
                if found is None:
                    break
                mark_node, node = found
            elif (
                isinstance(node, SequenceNode)
                and isinstance(seg, int)
                and not isinstance(seg, bool)
                and 0 <= seg < len(node.value)
            ):
                node = node.value[seg]
                mark_node = node
            else:
                break
            steps.append((node, mark_node))
        return steps

    def _entries(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        entries = self._keys.get(id(node))
        if entries is None:
            entries = {}
            for k, v in node.value:
                if isinstance(k, ScalarNode):
                    entries.setdefault(k.value, (k, v))
            self._keys[id(node)] = entries
        return entries

    def __call__(self, path: Path) -> tuple[int, int]:
        """1-based (line, column) of `path`, or of its nearest existing ancestor; (0, 0) if none."""
        steps = self._walk(path)
        if not steps:
            return (0, 0)
        mark = steps[-1][1].start_mark
        return (mark.line + 1, mark.column + 1)

    def sequence(self, path: Path) -> SequenceNode | None:
        """The node of the list at `path` (None when there is none there)."""
        steps = self._walk(path)
        if len(steps) == len(path) + 1 and isinstance(steps[-1][0], SequenceNode):
            return steps[-1][0]
        return None

    def find_item(self, path: Path, value: str) -> int | None:
        """Index of the first item of the list at `path` equal to `value`, ignoring case.

        Builds a value → index table for that one list on first use (error paths only).
        """
        index = self._indexes.get(path)
        if index is None:
            steps = self._walk(path)
            index = {}
            if len(steps) == len(path) + 1 and isinstance(steps[-1][0], SequenceNode):
                for i, item in enumerate(steps[-1][0].value):
                    if isinstance(item, ScalarNode):
                        index.setdefault(str(item.value).lower(), i)
            self._indexes[path] = index
        return index.get(value.lower())

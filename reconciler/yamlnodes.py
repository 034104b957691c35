"""From a composed YAML node tree to plain values, and the problems found on the way.

Only plain data comes out (dicts, lists, str, int, float, bool, None): duplicate keys, aliases
(never expanded, which defeats alias bombs), tags and deep nesting become located Problems,
each kind kept up to MAX_KEPT_PROBLEMS and counted beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol, cast

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import InputError, Omitted, Problem
from reconciler.i18n import N_, Said
from reconciler.yamlload import STR_TAG, YAML_TAG
from reconciler.yamlpaths import Path, format_path

MAX_DEPTH = 64  # a valid file nests 5 deep; anything near this is junk or an attack
MAX_ALIAS_PROBLEMS = 10  # an alias bomb has hundreds; the first few say it all
MAX_KEPT_PROBLEMS = 1000  # problems of one kind kept in full; the rest are only counted

_T = YAML_TAG
_STR, _NULL, _BOOL, _INT, _FLOAT = STR_TAG, _T + "null", _T + "bool", _T + "int", _T + "float"
_SEQ, _MAP, _MERGE = _T + "seq", _T + "map", _T + "merge"
# Not in YAML's core schema: a date or a lone `=` is just text to us (SafeLoader would make a
# datetime.date or fail), so `message: 2024-04-01` stays a string.
_TEXT_TAGS = frozenset({_STR, _T + "timestamp", _T + "value"})
_TAG, _VALUE = attrgetter("tag"), attrgetter("value")
_BOOLS = SafeConstructor.bool_values  # yes/no/on/off/true/false, as SafeLoader reads them


@dataclass(frozen=True)
class _Kind:
    """A kind of problem a node can have: its message (the {fields} filled in where it is
    found), the hint, and whether it makes the file unusable."""

    message: str
    hint: str
    fatal: bool = True


# Marked here and said (Said.of) where found, so that a renderer says them again in the
# reader's language.
_DUPLICATE_KEY = _Kind(
    N_("duplicate key {key} (first at line {line}, column {column})"),
    N_("keep one of them: YAML keys must be unique in a mapping"),
    fatal=False,
)
_COLLECTION_KEY = _Kind(
    N_("a mapping key must be a plain word, not a list or mapping"),
    N_("write keys like enabled: or members:"),
)
_MERGE_KEY = _Kind(N_("merge keys (<<) are not supported"), N_("write the keys out in full"))
_NOT_A_BOOL = _Kind(N_("{value} is not true or false"), N_("write true or false"))
_NAN = _Kind(N_("not a number (.nan)"), N_("write a number"), fatal=False)
_BAD_NUMBER = _Kind(N_("not a valid number: {value}"), N_("write a plain number"))
_BAD_TAG = _Kind(
    N_("the tag {tag} is not allowed"),
    N_("lwr reads plain YAML: text, numbers, true/false, lists and mappings, without !tags"),
)


def by_position(p: Problem) -> tuple[int, int]:
    """Sort key: problems in the order they are written in the file."""
    return (p.line, p.column)


def nesting_problem(source: str, line: int, column: int, path: Path) -> Problem:
    """The problem of a file nested deeper than MAX_DEPTH, at `path`."""
    return Problem(
        source,
        line,
        column,
        format_path(path),
        Said.of("nesting deeper than {n} levels", n=MAX_DEPTH),
        Said.of("a desired-state file nests a few levels; this is not a desired-state file"),
    )


def _yaml_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


class _Position(Protocol):
    """A libyaml or pure-Python Mark: 0-based line and column."""

    line: int
    column: int


class NodeBuilder:
    """Turns a composed node tree into plain values, collecting problems on the way.

    Aliases are found by identity: the composer hands out the same node object for every alias
    of an anchor, so a node reached twice is an alias. Never expanding one defeats alias bombs.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.fatal = False
        self.omitted = 0  # problems past MAX_KEPT_PROBLEMS: counted, not kept
        self._seen: set[int] = set()
        self._aliases: list[tuple[Path, Node, Node]] = []  # the first MAX_ALIAS_PROBLEMS
        self._alias_count = 0
        self._constructor = SafeConstructor()

    def _problem(self, node: Node, path: Path, kind: _Kind, **fields: Any) -> None:
        """A problem of `kind` at `node`, its message said with `fields`."""
        self.fatal |= kind.fatal
        if len(self.problems) >= MAX_KEPT_PROBLEMS:
            self.omitted += 1  # a million duplicate keys must not become a million Problems
            return
        self.problems.append(
            Problem(
                self.source,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                format_path(path),
                Said.of(kind.message, **fields),
                Said.of(kind.hint),
            )
        )

    def omitted_summary(self) -> list[Problem]:
        """One line standing for the problems counted but not kept."""
        if not self.omitted:
            return []
        return [
            Omitted(
                self.source,
                0,
                0,
                "",
                Said.of("{n:,} more problems of the same kinds not shown", n=self.omitted),
                Said.of("fix the ones shown and run again"),
                self.omitted,
            )
        ]

    def _alias(self, node: Node, at: Node, path: Path) -> None:
        """`node` was reached again at `path`; `at` is the best place the node tree knows."""
        self.fatal = True
        self._alias_count += 1
        if len(self._aliases) < MAX_ALIAS_PROBLEMS:
            self._aliases.append((path, node, at))

    def alias_problems(self, alias_marks: list[_Position]) -> None:
        """One problem per alias (the first few), placed where each `*name` is written.

        The node tree only knows where the anchored value is; the event stream knows where each
        alias is, in document order, which is the order this builder met them.
        """
        if len(alias_marks) != len(self._aliases):
            alias_marks = [at.start_mark for _, _, at in self._aliases]
        for (path, node, _), mark in zip(self._aliases, alias_marks, strict=False):
            anchor = node.start_mark
            self.problems.append(
                Problem(
                    self.source,
                    mark.line + 1,
                    mark.column + 1,
                    format_path(path),
                    Said.of(
                        "anchors and aliases (&name, *name) are not supported: this repeats the "
                        "value at line {line}, column {column}",
                        line=anchor.line + 1,
                        column=anchor.column + 1,
                    ),
                    Said.of("write the value out in full"),
                )
            )

    def alias_summary(self) -> list[Problem]:
        """One line standing for the aliases not reported one by one."""
        extra = self._alias_count - MAX_ALIAS_PROBLEMS
        if extra <= 0:
            return []
        return [
            Problem(
                self.source,
                0,
                0,
                "",
                Said.of("{n} more aliases not shown", n=extra),
                Said.of("anchors and aliases are not supported anywhere in the file"),
            )
        ]

    @property
    def has_aliases(self) -> bool:
        """Whether any node was reached twice."""
        return bool(self._aliases)

    def value(self, node: Node, path: Path, depth: int) -> Any:
        """The plain value of the (root) node."""
        self._seen.add(id(node))
        return self._build(node, path, depth)

    def _build(self, node: Node, path: Path, depth: int) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if depth > MAX_DEPTH:
            self.problems.append(
                nesting_problem(
                    self.source, node.start_mark.line + 1, node.start_mark.column + 1, path
                )
            )
            raise InputError(sorted(self.problems, key=by_position))
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return self._sequence(node, path, depth)
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, path, depth)
        self._bad_tag(node, path)
        return None

    def _sequence(self, node: SequenceNode, path: Path, depth: int) -> list[Any]:
        items: list[Node] = node.value
        seen = self._seen
        # The hot path of a 1M-member list: all scalars, none seen before (no alias), checked
        # and taken in C-speed map()s. Only for scalars: a collection item may hold an anchor
        # that a later item aliases, which only the in-order loop below attributes correctly.
        if set(map(type, items)) == {ScalarNode}:
            ids = set(map(id, items))
            if len(ids) == len(items) and seen.isdisjoint(ids):
                seen |= ids
                if set(map(_TAG, items)) == {_STR}:
                    return list(map(_VALUE, items))
                scalars = cast(list[ScalarNode], items)
                return [
                    item.value if item.tag == _STR else self._scalar(item, (*path, i))
                    for i, item in enumerate(scalars)
                ]
        out: list[Any] = []
        for i, item in enumerate(items):
            if id(item) in seen:
                self._alias(item, item, (*path, i))
                out.append(None)
                continue
            seen.add(id(item))
            out.append(self._build(item, (*path, i), depth + 1))
        return out

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        firsts: dict[str, Node] = {}  # where each key is first written (for duplicates)
        seen = self._seen
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            value_path = (*path, key if key is not None else "?")
            if id(value_node) in seen:
                self._alias(value_node, key_node, value_path)
                continue
            seen.add(id(value_node))
            value = self._build(value_node, value_path, depth + 1)
            if key is None:
                continue
            if key in out:
                first = firsts[key]
                self._problem(
                    key_node,
                    value_path,
                    _DUPLICATE_KEY,
                    key=repr(key),
                    line=first.start_mark.line + 1,
                    column=first.start_mark.column + 1,
                )
                continue
            out[key] = value
            firsts[key] = key_node
        return out

    def _key(self, node: Node, path: Path) -> str | None:
        """Keys are taken as the text written: JSON Schema only knows string keys."""
        if id(node) in self._seen:
            self._alias(node, node, path)
            return None
        self._seen.add(id(node))
        if not isinstance(node, ScalarNode):
            self._problem(node, path, _COLLECTION_KEY)
            return None
        if node.tag == _MERGE:
            self._problem(node, path, _MERGE_KEY)
            return None
        if node.tag not in (_STR, _NULL, _BOOL, _INT, _FLOAT, *_TEXT_TAGS):
            self._bad_tag(node, path)
            return None
        value: str = node.value
        return value

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            flag = _BOOLS.get(node.value.lower())
            if flag is None:
                self._problem(node, path, _NOT_A_BOOL, value=repr(node.value))
            return flag
        try:
            if tag == _INT:
                return self._constructor.construct_yaml_int(node)
            if tag == _FLOAT:
                number = self._constructor.construct_yaml_float(node)
                if math.isnan(number):
                    self._problem(node, path, _NAN)
                return number
        except ValueError:  # `!!int x`, or more digits than Python converts (4300)
            self._problem(node, path, _BAD_NUMBER, value=_clip(node.value))
            return None
        self._bad_tag(node, path)
        return None

    def _bad_tag(self, node: Node, path: Path) -> None:
        self._problem(node, path, _BAD_TAG, tag=_yaml_tag(node.tag))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"

"""Safe YAML loading for lwr's input files: plain data out, every problem located.

Owns the size cap, encoding checks, and rejecting duplicate keys, aliases, tags, deep nesting.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler import files
from reconciler.errors import FileError, InputError, Omitted, Problem, UsageError

Path = tuple[str | int, ...]

SIZE_ENV = "LWR_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 40 * 1024 * 1024  # room for a 1M-member list (~35 MB)
MAX_DEPTH = 64  # a valid file nests 5 deep; anything near this is junk or an attack
MAX_ALIAS_PROBLEMS = 10  # an alias bomb has hundreds; the first few say it all
#: Bytes of the size cap per value (node) a file may hold: 40 MiB allows 2.6 million values,
#: while a 1M-member file has 1 million. Each value costs ~400 bytes of memory once parsed,
#: so a file of one-character values ("[a,a,a,...", 20 million in 40 MiB) cannot take 8 GB.
BYTES_PER_VALUE = 16
MAX_KEPT_PROBLEMS = 1000  # problems of one kind kept in full; the rest are only counted

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = _T + "str", _T + "null", _T + "bool", _T + "int", _T + "float"
_SEQ, _MAP, _MERGE = _T + "seq", _T + "map", _T + "merge"
# Not in YAML's core schema: a date or a lone `=` is just text to us (SafeLoader would make a
# datetime.date or fail), so `message: 2024-04-01` stays a string.
_TEXT_TAGS = frozenset({_STR, _T + "timestamp", _T + "value"})
_TAG, _VALUE = attrgetter("tag"), attrgetter("value")
_BOOLS = SafeConstructor.bool_values  # yes/no/on/off/true/false, as SafeLoader reads them

# What libyaml refuses as "control characters"; found up front to say where and what they are.
_ASCII_OK = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")

_SYNTAX_HINTS = (
    ("tab", "indent with spaces: YAML does not allow tabs for indentation"),
    ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation"),
    ("expected a single document", "one desired state per file: remove the second '---' part"),
    ("maximum nesting depth", f"a desired-state file nests a few levels, never {MAX_DEPTH}+"),
    ("undefined alias", "aliases (*name) are not supported: write the value out in full"),
    ("quoted scalar", "close the quote"),
    ("flow", "close every '[' with ']' and every '{' with '}'"),
)


def _fast_loader(base: type[Any]) -> type[Any]:
    """`base` (CSafeLoader or SafeLoader) with the same tag resolution, minus per-node overhead.

    The parser calls these three methods for every node; on a 100k-member list they are a
    tenth of the parse. Same table, same answers: the fast branches only skip building lists
    and the path-resolver machinery, which SafeLoader has none of (else the originals run).
    """

    class Loader(base):  # type: ignore[misc]
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._values_left = max_values()

        def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
            table = self.yaml_implicit_resolvers
            if (
                kind is ScalarNode
                and implicit[0]
                and None not in table
                and not self.yaml_path_resolvers
            ):
                for tag, regexp in table.get(value[0] if value else "", ()):
                    if regexp.match(value):
                        return str(tag)
                return _STR  # SafeLoader's DEFAULT_SCALAR_TAG
            return str(super().resolve(kind, value, implicit))

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            # Called for every node the composer builds, tagged or not: the place to count.
            self._values_left -= 1
            if self._values_left < 0:
                raise _TooManyValues
            if self.yaml_path_resolvers:
                super().descend_resolver(current_node, current_index)

        def ascend_resolver(self) -> None:
            if self.yaml_path_resolvers:
                super().ascend_resolver()

    return Loader


class _TooManyValues(Exception):
    """More values (nodes) than max_values(): composing stops before memory runs away."""


# libyaml's parser is ~10x faster than the pure-Python one; both resolve tags the same way.
_Loader = _fast_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def max_values() -> int:
    """How many values (scalars, lists, mappings) a file may hold: one per 16 bytes of the cap."""
    return max_file_bytes() // BYTES_PER_VALUE


def max_file_bytes() -> int:
    """The input size cap: LWR_MAX_FILE_BYTES when set, else 40 MiB."""
    raw = os.environ.get(SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FILE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise UsageError(f"{SIZE_ENV}={raw!r}: expected a positive number of bytes")
    return value


def read_capped(path: str | os.PathLike[str], source: str) -> bytes:
    """The file's bytes, refusing files over the cap before reading (or parsing) them."""
    cap = max_file_bytes()
    try:
        with files.open_input(path) as f:  # regular files only: a FIFO would block forever
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                raise InputError([_too_big(source, cap, size)])
            # Read one byte past the cap: the file may grow while it is read.
            data = f.read(cap + 1)
    except (OSError, FileError) as e:
        why = e.reason if isinstance(e, FileError) else files.reason(e)
        hint = (
            "give the path of a regular file"
            if why.endswith(files.NOT_REGULAR)
            else "check the path and its permissions"
        )
        raise InputError([Problem(source, 0, 0, "", f"cannot read the file: {why}", hint)]) from e
    if len(data) > cap:
        raise InputError([_too_big(source, cap)])
    return data


def read_stdin_capped(source: str) -> bytes:
    """Standard input's bytes (`lwr plan -`), refused past the same cap as a file."""
    import sys

    cap = max_file_bytes()
    try:
        data = sys.stdin.buffer.read(cap + 1)
    except (OSError, ValueError) as e:  # closed, or not readable
        raise InputError([Problem(source, 0, 0, "", f"cannot read standard input: {e}")]) from e
    if len(data) > cap:
        raise InputError([_too_big(source, cap)])
    return data


def _too_big(source: str, cap: int, size: int | None = None) -> Problem:
    """`size` None: a file that grew past the cap while it was read."""
    amount = f"{size:,} bytes" if size is not None else f"more than {cap:,} bytes"
    return Problem(
        source,
        0,
        0,
        "",
        f"file too large: {amount}, the limit is {cap:,}",
        f"a desired-state file is far smaller; set {SIZE_ENV} to raise the limit",
    )


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


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: its data, a way to locate paths in it, and problems that did not stop us."""

    data: Any
    locate: Locator
    text: str
    problems: tuple[Problem, ...] = ()  # duplicate keys, NaN: reported with the schema's findings


def load_yaml(data: bytes, source: str) -> YamlDocument:
    """Parse one YAML document safely into dicts, lists, str, int, float, bool and None.

    Raises InputError for anything that makes the data untrustworthy: size, encoding, syntax,
    aliases, unknown tags, nesting. Duplicate keys keep the first value and ride along in
    `problems` so the caller can report them together with everything else.
    """
    cap = max_file_bytes()
    if len(data) > cap:
        raise InputError([_too_big(source, cap, len(data))])
    text = _decode(data, source)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        raise InputError([_syntax_problem(e, text, source)]) from e
    except yaml.YAMLError as e:  # ReaderError and friends carry no line/column
        raise InputError([Problem(source, 0, 0, "", f"invalid YAML: {e}")]) from e
    except RecursionError as e:  # only the pure-Python parser recurses per nesting level
        raise InputError([_nesting_problem(source, 0, 0, ())]) from e
    except _TooManyValues as e:
        raise InputError(
            [
                Problem(
                    source,
                    0,
                    0,
                    "",
                    f"too many values: more than {max_values():,} (one per "
                    f"{BYTES_PER_VALUE} bytes of the {cap:,}-byte size limit)",
                    f"a desired-state file lists members, one per line; set {SIZE_ENV} to raise "
                    "the limit",
                )
            ]
        ) from e
    if root is None:
        raise InputError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "",
                    "empty file: expected a mapping with version, tenant, external_messaging",
                    "start from examples/company.yaml or `lwr export`",
                )
            ]
        )
    builder = _Builder(source)
    value = builder.value(root, (), 1)
    if builder.has_aliases:
        # Only the first few: the event stream of a 40 MiB alias bomb is not worth reading.
        aliases = (
            event.start_mark
            for event in yaml.parse(text, Loader=_Loader)
            if isinstance(event, yaml.AliasEvent) and event.start_mark
        )
        builder.alias_problems(list(itertools.islice(aliases, MAX_ALIAS_PROBLEMS)))
    if builder.fatal:
        raise InputError(
            sorted(builder.problems, key=_position)
            + builder.alias_summary()
            + builder.omitted_summary()
        )
    return YamlDocument(
        value, Locator(root), text, tuple(builder.problems) + tuple(builder.omitted_summary())
    )


def _position(p: Problem) -> tuple[int, int]:
    return (p.line, p.column)


def _decode(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is fine) with no control characters, or a located InputError."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError([Problem(source, 1, 1, "", "the file is UTF-16 text", "save it as UTF-8")])
    if data.isascii():
        junk = data.translate(None, _ASCII_OK)
        if junk:  # translate() keeps order: junk[0] is the first offending byte
            at = data.find(junk[:1])
            raise InputError([_control_problem(source, data[:at].decode("ascii"), junk[0])])
        return data.decode("ascii")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        line_start = data.rfind(b"\n", 0, e.start) + 1
        column = len(data[line_start : e.start].decode("utf-8", "replace")) + 1
        raise InputError(
            [
                Problem(
                    source,
                    line,
                    column,
                    "",
                    f"not UTF-8 text: byte 0x{data[e.start]:02x} cannot be decoded",
                    "save the file as UTF-8 (not Shift_JIS or another encoding); "
                    "is it a binary file?",
                )
            ]
        ) from None
    found = _CONTROL.search(text)
    if found:
        raise InputError([_control_problem(source, text[: found.start()], ord(found.group()))])
    return text


def _control_problem(source: str, before: str, code: int) -> Problem:
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    if code == 0:
        return Problem(
            source,
            line,
            column,
            "",
            "NUL byte: this looks like a binary file, not YAML",
            "give lwr the desired-state YAML file",
        )
    return Problem(
        source,
        line,
        column,
        "",
        f"control character U+{code:04X} is not allowed in YAML",
        "remove it; inside double quotes it can be written as an escape like \\x01",
    )


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, source: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    # libyaml says what it was doing (context) and what went wrong (problem).
    parts = [part for part in (e.context, e.problem) if part]
    if e.context and e.context_mark and mark and e.context_mark.line != mark.line:
        parts[0] += f" at line {e.context_mark.line + 1}"
    message = "invalid YAML: " + (", ".join(parts) or "syntax error")
    problem = f"{e.problem} {e.context}".lower()
    if mark and mark.index < len(text) and text[mark.index] == "\t":
        problem += " tab"
    hint = next(
        (h for key, h in _SYNTAX_HINTS if key in problem),
        "check the indentation and quoting at this position",
    )
    return Problem(source, line, column, "", message, hint)


def _nesting_problem(source: str, line: int, column: int, path: Path) -> Problem:
    return Problem(
        source,
        line,
        column,
        format_path(path),
        f"nesting deeper than {MAX_DEPTH} levels",
        "a desired-state file nests a few levels; this is not a desired-state file",
    )


def _yaml_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


class _Position(Protocol):
    """A libyaml or pure-Python Mark: 0-based line and column."""

    line: int
    column: int


class _Builder:
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

    def _problem(self, node: Node, path: Path, message: str, hint: str, *, fatal: bool) -> None:
        self.fatal |= fatal
        if len(self.problems) >= MAX_KEPT_PROBLEMS:
            self.omitted += 1  # a million duplicate keys must not become a million Problems
            return
        self.problems.append(
            Problem(
                self.source,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                format_path(path),
                message,
                hint,
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
                f"{self.omitted:,} more problems of the same kinds not shown",
                "fix the ones shown and run again",
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
                    "anchors and aliases (&name, *name) are not supported: this repeats the value "
                    f"at line {anchor.line + 1}, column {anchor.column + 1}",
                    "write the value out in full",
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
                f"{extra} more aliases not shown",
                "anchors and aliases are not supported anywhere in the file",
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
                _nesting_problem(
                    self.source, node.start_mark.line + 1, node.start_mark.column + 1, path
                )
            )
            raise InputError(sorted(self.problems, key=_position))
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
                where = f"line {first.start_mark.line + 1}, column {first.start_mark.column + 1}"
                self._problem(
                    key_node,
                    value_path,
                    f"duplicate key {key!r} (first at {where})",
                    "keep one of them: YAML keys must be unique in a mapping",
                    fatal=False,
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
            self._problem(
                node,
                path,
                "a mapping key must be a plain word, not a list or mapping",
                "write keys like enabled: or members:",
                fatal=True,
            )
            return None
        if node.tag == _MERGE:
            self._problem(
                node,
                path,
                "merge keys (<<) are not supported",
                "write the keys out in full",
                fatal=True,
            )
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
                self._problem(
                    node,
                    path,
                    f"{node.value!r} is not true or false",
                    "write true or false",
                    fatal=True,
                )
            return flag
        try:
            if tag == _INT:
                return self._constructor.construct_yaml_int(node)
            if tag == _FLOAT:
                number = self._constructor.construct_yaml_float(node)
                if math.isnan(number):
                    self._problem(node, path, "not a number (.nan)", "write a number", fatal=False)
                return number
        except ValueError:  # `!!int x`, or more digits than Python converts (4300)
            self._problem(
                node,
                path,
                f"not a valid number: {_clip(node.value)}",
                "write a plain number",
                fatal=True,
            )
            return None
        self._bad_tag(node, path)
        return None

    def _bad_tag(self, node: Node, path: Path) -> None:
        self._problem(
            node,
            path,
            f"the tag {_yaml_tag(node.tag)} is not allowed",
            "lwr reads plain YAML: text, numbers, true/false, lists and mappings, without !tags",
            fatal=True,
        )


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


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
                self._root = yaml.compose(self._text, Loader=_Loader)
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

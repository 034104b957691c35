"""Safe YAML loading for lwr's input files: plain data out, every problem located.

Owns reading an input under the size cap, the encoding checks and the syntax messages; the
loader and its limits are reconciler.yamlload, turning nodes into values (duplicate keys,
aliases, tags, deep nesting refused) reconciler.yamlnodes, and locating paths in the file
reconciler.yamlpaths.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler import files
from reconciler.errors import FileError, InputError, Problem
from reconciler.i18n import N_, Said
from reconciler.yamlload import (
    BYTES_PER_VALUE,
    LOADER,
    SIZE_ENV,
    TooManyValues,
    max_file_bytes,
    max_values,
)
from reconciler.yamlnodes import (
    MAX_ALIAS_PROBLEMS,
    MAX_DEPTH,
    NodeBuilder,
    by_position,
    nesting_problem,
)
from reconciler.yamlpaths import Locator, Path, format_path

__all__ = [
    "MAX_ALIAS_PROBLEMS",
    "Locator",
    "Path",
    "YamlDocument",
    "format_path",
    "load_yaml",
    "max_file_bytes",
    "read_capped",
]

# What libyaml refuses as "control characters"; found up front to say where and what they are.
_ASCII_OK = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")

_SYNTAX_HINTS = (
    ("tab", N_("indent with spaces: YAML does not allow tabs for indentation")),
    (
        "mapping values are not allowed",
        N_("quote a value that contains ': ', or fix the indentation"),
    ),
    ("expected a single document", N_("one desired state per file: remove the second '---' part")),
    ("maximum nesting depth", N_("a desired-state file nests a few levels, never {depth}+")),
    ("undefined alias", N_("aliases (*name) are not supported: write the value out in full")),
    ("quoted scalar", N_("close the quote")),
    ("flow", N_("close every '[' with ']' and every '{{' with '}}'")),
)


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
            Said.of("give the path of a regular file")
            if why.endswith(files.NOT_REGULAR)
            else Said.of("check the path and its permissions")
        )
        said = Said.of("cannot read the file: {why}", why=why)
        raise InputError([Problem(source, 0, 0, "", said, hint)]) from e
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
        said = Said.of("cannot read standard input: {why}", why=str(e))
        raise InputError([Problem(source, 0, 0, "", said)]) from e
    if len(data) > cap:
        raise InputError([_too_big(source, cap)])
    return data


def _too_big(source: str, cap: int, size: int | None = None) -> Problem:
    """`size` None: a file that grew past the cap while it was read."""
    message = (
        Said.of("file too large: {size:,} bytes, the limit is {cap:,}", size=size, cap=cap)
        if size is not None
        else Said.of("file too large: more than {cap:,} bytes, the limit is {cap:,}", cap=cap)
    )
    hint = Said.of(
        "a desired-state file is far smaller; set {env} to raise the limit", env=SIZE_ENV
    )
    return Problem(source, 0, 0, "", message, hint)


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
        root = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as e:
        raise InputError([_syntax_problem(e, text, source)]) from e
    except yaml.YAMLError as e:  # ReaderError and friends carry no line/column
        said = Said.of("invalid YAML: {why}", why=str(e))
        raise InputError([Problem(source, 0, 0, "", said)]) from e
    except RecursionError as e:  # only the pure-Python parser recurses per nesting level
        raise InputError([nesting_problem(source, 0, 0, ())]) from e
    except TooManyValues as e:
        raise InputError(
            [
                Problem(
                    source,
                    0,
                    0,
                    "",
                    Said.of(
                        "too many values: more than {n:,} (one per {per} bytes of the "
                        "{cap:,}-byte size limit)",
                        n=max_values(),
                        per=BYTES_PER_VALUE,
                        cap=cap,
                    ),
                    Said.of(
                        "a desired-state file lists members, one per line; set {env} to raise "
                        "the limit",
                        env=SIZE_ENV,
                    ),
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
                    Said.of(
                        "empty file: expected a mapping with version, tenant, external_messaging"
                    ),
                    Said.of("start from examples/company.yaml or `lwr export`"),
                )
            ]
        )
    builder = NodeBuilder(source)
    value = builder.value(root, (), 1)
    if builder.has_aliases:
        # Only the first few: the event stream of a 40 MiB alias bomb is not worth reading.
        aliases = (
            event.start_mark
            for event in yaml.parse(text, Loader=LOADER)
            if isinstance(event, yaml.AliasEvent) and event.start_mark
        )
        builder.alias_problems(list(itertools.islice(aliases, MAX_ALIAS_PROBLEMS)))
    if builder.fatal:
        raise InputError(
            sorted(builder.problems, key=by_position)
            + builder.alias_summary()
            + builder.omitted_summary()
        )
    return YamlDocument(
        value, Locator(root), text, tuple(builder.problems) + tuple(builder.omitted_summary())
    )


def _decode(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is fine) with no control characters, or a located InputError."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        said, hint = Said.of("the file is UTF-16 text"), Said.of("save it as UTF-8")
        raise InputError([Problem(source, 1, 1, "", said, hint)])
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
                    Said.of(
                        "not UTF-8 text: byte 0x{byte:02x} cannot be decoded", byte=data[e.start]
                    ),
                    Said.of(
                        "save the file as UTF-8 (not Shift_JIS or another encoding); "
                        "is it a binary file?"
                    ),
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
            Said.of("NUL byte: this looks like a binary file, not YAML"),
            Said.of("give lwr the desired-state YAML file"),
        )
    return Problem(
        source,
        line,
        column,
        "",
        Said.of("control character U+{code:04X} is not allowed in YAML", code=code),
        Said.of("remove it; inside double quotes it can be written as an escape like \\x01"),
    )


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, source: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    # libyaml says what it was doing (context) and what went wrong (problem).
    parts = [part for part in (e.context, e.problem) if part]
    if e.context and e.context_mark and mark and e.context_mark.line != mark.line:
        parts[0] += f" at line {e.context_mark.line + 1}"
    message = Said.of("invalid YAML: {why}", why=", ".join(parts) or "syntax error")
    problem = f"{e.problem} {e.context}".lower()
    if mark and mark.index < len(text) and text[mark.index] == "\t":
        problem += " tab"
    hint = Said.of(  # each hint is formatted (`{{` for a brace): one of them names the depth
        next(
            (h for key, h in _SYNTAX_HINTS if key in problem),
            N_("check the indentation and quoting at this position"),
        ),
        depth=MAX_DEPTH,
    )
    return Problem(source, line, column, "", message, hint)

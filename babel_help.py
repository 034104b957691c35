"""Babel's extractor for lwr's command-line modules (`make messages`, babel.cfg): what the
python extractor finds (`_`, `n_`, `N_`, …), and the docstring of each click command or group,
which click shows as its help and reconciler/cli/helptext.py says in the reader's language.

Not part of the package: it runs where Babel runs, from the repository (PYTHONPATH=.).
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

Found = tuple[int, str | None, str | tuple[str, ...], list[str]]


def extract_command_help(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str], options: Any
) -> Iterator[Found]:
    """(line, funcname, message, comments): the python extractor's, then each docstring of a
    function decorated with `….command(…)` or `….group(…)`, cleaned as click shows it."""
    from babel.messages.extract import extract_python

    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(map(_is_command, node.decorator_list)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield node.lineno, None, doc, []


def _is_command(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(call, ast.Attribute) and call.attr in ("command", "group")

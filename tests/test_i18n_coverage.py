"""No English-only message is left for a person to read: every error lwr raises and every
problem it reports is written as a message the catalog translates (`i18n.Said`, `Told`, or a
`Messages` call), never as a bare string or f-string, which would stay English under
`--lang ja`. tests/test_i18n.py then holds every such message to its Japanese translation."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import reconciler
from reconciler.errors import LwrError

PACKAGE = Path(reconciler.__file__).parent

#: Where English is right: the error that the Japanese catalog itself cannot be read.
ENGLISH_ON_PURPOSE = {("i18n.py", "FileError")}


def error_names() -> set[str]:
    """Every LwrError subclass of the package, by class name (and click's UsageError, which
    lwr's own UsageError shadows in the CLI modules)."""
    found = {"UsageError"}
    for module in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        if module.name.endswith("__main__"):
            continue
        for name, value in vars(importlib.import_module(module.name)).items():
            if inspect.isclass(value) and issubclass(value, LwrError):
                found.add(name)
    return found


def is_bare_text(node: ast.expr) -> bool:
    """A literal or f-string (or a sum of them): English text nobody can translate later."""
    if isinstance(node, ast.BinOp):
        return is_bare_text(node.left) or is_bare_text(node.right)
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value != ""
    )


def english_only() -> list[str]:
    """`file:line: what` for each raise of an lwr error, each Problem message and each
    console refusal's reason written as bare text."""
    errors = error_names()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "Problem" and len(node.args) > 4:
                texts = node.args[4:6]  # the message and the hint
            elif name == "refuse" and len(node.args) > 2:
                texts = node.args[2:3]  # the console's reason (console_shape.refuse)
            elif name in errors and (where, name) not in ENGLISH_ON_PURPOSE:
                texts = node.args[:1]
            else:
                continue
            if any(is_bare_text(text) for text in texts):
                found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_every_error_and_problem_is_written_to_be_translated() -> None:
    assert english_only() == []


def test_the_check_finds_an_english_only_raise() -> None:
    """The scan itself: a bare f-string in a raise is what it reports."""
    tree = ast.parse('raise TenantError(f"cannot reach {host}")').body[0]
    assert isinstance(tree, ast.Raise) and isinstance(tree.exc, ast.Call)
    assert is_bare_text(tree.exc.args[0])
    said = ast.parse('raise TenantError(Said.of("cannot reach {host}", host=host))').body[0]
    assert isinstance(said, ast.Raise) and isinstance(said.exc, ast.Call)
    assert not is_bare_text(said.exc.args[0])

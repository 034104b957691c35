"""Layers point down only: a module imports its own layer or lower ones, never higher.

    model/actions/errors ← uris ← store ← providers ← planner/plan/apply/workflow ← render ← cli

Read from the source with `ast`, so an import inside a function (lazy, to keep start-up
cheap) counts as much as one at the top, and so does one under `if TYPE_CHECKING:`
(TYPE_ONLY below names the few allowed upward, each with why). The
package root, `reconciler/__init__.py`, is the public facade over every layer: it imports
nothing when loaded (tests/test_public_api.py), and a module may take only `__version__`
from it. docs/architecture.md shows the same map.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "reconciler"

#: Lowest first. A module is in the first layer naming it or a package above it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "model",
        (
            "model",
            "orgchart",
            "selectors",
            "selection",
            "sourcelines",
            "actions",
            "change_json",
            "settings",
            "console",
            "console_shape",
            "words",
            "closing",
            "i18n",
            "errors",
            "resources",
            "side_effects",
            "terminal",
            "files",
            "sqlite_files",
            "yamlsafe",
            "yamlload",
            "yamlnodes",
            "yamlpaths",
            "desired",
            "desired_schema",
            "sniff",
            "schema_words",
        ),
    ),
    ("uris", ("uris", "targets", "redaction", "credentials")),
    ("store", ("store", "audit")),
    ("providers", ("providers",)),
    (
        "planner",
        (
            "planner",
            "selecting",
            "gate",
            "lockwait",
            "plan",
            "saved_plan",
            "change_shape",
            "policy",
            "policy_files",
            "drift",
            "export",
            "manual",
            "apply",
            "stopped",
            "batching",
            "outcomes",
            "stopping",
            "workflow",
            "executing",
            "fleet_results",
            "fleet",
            "fleet_runs",
            "plandir",
        ),
    ),
    ("render", ("render",)),
    ("cli", ("cli", "__main__")),
]


#: Upward imports made for type annotations only (under `if TYPE_CHECKING:`), each with why;
#: nothing of the higher layer runs. Keep this empty where you can.
TYPE_ONLY: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    """The index in LAYERS of a module `reconciler.x.y`."""
    parts = module.split(".")[1:]
    for index, (_, names) in enumerate(LAYERS):
        if parts and parts[0] in names:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def imports_of(path: Path) -> set[tuple[str, int]]:
    """(module, line) of every `reconciler` module imported anywhere in the file."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return imports_in(path.read_text(encoding="utf-8"), ".".join(parts[:-1]))


def imports_in(source: str, package: str) -> set[tuple[str, int]]:
    """(module, line) of every `reconciler` module `source` imports, in `package`."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(a.name, node.lineno) for a in node.names if a.name.startswith("reconciler")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            if not base.startswith("reconciler"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:  # `from reconciler import fleet` imports reconciler.fleet
                    found.add((sub, node.lineno))
                elif base == "reconciler":
                    found.add((f"reconciler:{alias.name}", node.lineno))
                else:
                    found.add((base, node.lineno))
    return found


def test_every_module_is_in_a_layer_and_imports() -> None:
    for module in MODULES:
        if module != "reconciler":
            layer_of(module)
        if module != "reconciler.__main__":  # importing it runs the CLI
            importlib.import_module(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "reconciler"))
def test_imports_point_down_only(module: str) -> None:
    mine = layer_of(module)
    upward = []
    for target, line in sorted(imports_of(MODULES[module])):
        if target.startswith("reconciler:"):
            if target != "reconciler:__version__":
                upward.append(
                    f"line {line}: takes {target.split(':')[1]} from the package "
                    "root (only __version__ may be)"
                )
            continue
        if target == "reconciler":
            continue
        theirs = layer_of(target)
        if theirs > mine and (module, target) not in TYPE_ONLY:
            upward.append(f"line {line}: {target} ({LAYERS[theirs][0]})")
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports a higher layer:\n  " + "\n  ".join(
        upward
    )


def test_errors_depend_on_nothing_above_the_model() -> None:
    """Every layer raises reconciler.errors, so it may not lean on any of them, not even for
    a type: the error that carries an apply's result (ApplyStopped) lives at the apply layer."""
    above = sorted(
        f"line {line}: {target}"
        for target, line in imports_of(MODULES["reconciler.errors"])
        if target.startswith("reconciler.") and layer_of(target) > 0
    )
    assert not above, "reconciler.errors imports:\n  " + "\n  ".join(above)
    assert not [pair for pair in TYPE_ONLY if pair[0] == "reconciler.errors"]


def test_the_type_only_exceptions_are_type_only() -> None:
    for module, target in TYPE_ONLY:
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        guarded = {
            n.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for n in ast.walk(node)
            if isinstance(n, ast.ImportFrom | ast.Import)
        }
        lines = {line for t, line in imports_of(MODULES[module]) if t == target}
        assert lines and lines <= guarded, f"{module} imports {target} at run time"


def test_render_does_not_import_click() -> None:
    for module, path in MODULES.items():
        if module.startswith("reconciler.render"):
            names = {
                n.name
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Import)
                for n in node.names
            }
            names |= {
                node.module or ""
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom)
            }
            assert not {n for n in names if n.split(".")[0] == "click"}, module


def test_the_checker_sees_lazy_relative_and_aliased_imports() -> None:
    """The parser itself: imports inside functions, `from reconciler import x` and relative
    imports all count."""
    source = (
        "def f():\n    from reconciler import workflow\n"
        "    import reconciler.cli.common\n    from ..apply import execute\n"
    )
    assert {t for t, _ in imports_in(source, "reconciler.providers.lineworks")} == {
        "reconciler.workflow",
        "reconciler.cli.common",
        "reconciler.providers.apply",
    }
    source = "from .. import apply\n"
    assert {t for t, _ in imports_in(source, "reconciler.providers")} == {"reconciler.apply"}


def test_provider_capabilities_are_declared_not_discovered() -> None:
    """What a provider can do is a class attribute on providers.base.Provider with a default:
    no isinstance against a provider protocol, no hasattr on a provider."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            args = [ast.unparse(a) for a in node.args]
            if node.func.id == "isinstance" and len(args) == 2 and "Provider" in args[1]:
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
            if node.func.id in ("hasattr", "getattr") and args and "provider" in args[0]:
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "capabilities discovered at run time:\n  " + "\n  ".join(found)

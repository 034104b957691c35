"""What `lwr` imports late, and why: the one list of deferred imports (docs/performance.md,
"session 4: start-up").

`lwr --version` and `lwr validate FILE` should cost little more than importing yaml,
jsonschema and click. So:

- each command's module (and with it the planner, the providers, the state store, the
  renderers) is imported when that command runs: COMMANDS below, read by cli.common.LazyGroup;
- within cli.plans (validate, plan, show-plan, drift), `workflow` only when a command uses it
  (validate does not), and `files` only when a file is written: the Deferred modules below;
- cli.common opens providers and state stores with function-local imports;
- `rich` only for an apply's progress bar on a terminal (cli.applying._progress);
- `httpx` and the LINE WORKS client only for a `lineworks:` tenant (providers);
- `psycopg` only for a `postgresql://` state (store);
- `reconciler/__init__.py` loads its public names on first use.

tests/test_startup.py checks `lwr --version` imports none of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any


class Deferred:
    """A module imported on its first attribute (`workflow.plan_desired`): a command module
    can name it at the top, and commands that never touch it never pay for it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(import_module(self._name), attribute)


if TYPE_CHECKING:  # the real modules, for mypy
    from reconciler import files as files
    from reconciler import workflow as workflow
else:
    #: The planner, providers, saved plans (workflow imports them): not for `validate`.
    workflow = Deferred("reconciler.workflow")
    #: tempfile and friends, for the commands that write a file.
    files = Deferred("reconciler.files")

#: Command name → the module that defines it (and registers it on import).
COMMANDS = {
    "validate": "reconciler.cli.plans",
    "plan": "reconciler.cli.plans",
    "show-plan": "reconciler.cli.plans",
    "drift": "reconciler.cli.plans",
    "apply": "reconciler.cli.applying",
    "export": "reconciler.cli.tenants",
    "show": "reconciler.cli.tenants",
    "attest": "reconciler.cli.tenants",
    "tenant": "reconciler.cli.people",  # which imports cli.tenants, the group's own module
    "schema": "reconciler.cli.tenants",
    "audit": "reconciler.cli.state",
    "unlock": "reconciler.cli.state",
    "lock": "reconciler.cli.state",
    "state": "reconciler.cli.state",
    "completion": "reconciler.cli.completion",
}


def load_command_module(name: str) -> None:
    """Import the module that registers command `name`."""
    module = COMMANDS.get(name)
    if module is not None:
        import_module(module)
        return
    # Not listed: load them all, so a command added to a module without a line here still
    # runs, and click's "No such command" can suggest the closest real one.
    load_all()


def load_all() -> None:
    """Import every command module (help, completion, code walking every command)."""
    for every in sorted(set(COMMANDS.values())):
        import_module(every)

"""The `local:` provider: a tenant in one SQLite file that behaves like the LINE WORKS console.

tenant: read and apply (on the console model); schema: the file's tables and upgrades;
fileformat: the file's lifecycle; rows: rows as model values; orgunits: the org chart;
hr: `lwr tenant join/move/leave/group`; simulator: `lwr tenant contact/messages`; demo: the
demo company of `lwr tenant init --demo`.

Each name is imported from its module when first used: `lwr plan` opens a tenant and reads
it, and loads neither the demo company, the HR changes nor the simulator
(docs/performance.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Name → the submodule that defines it.
_HOMES = {
    "DEMO_GROUPS": "demo",
    "DEMO_LINE_MEMBERS": "demo",
    "DEMO_MIN_MEMBERS": "demo",
    "DEMO_PEOPLE": "demo",
    "DEMO_UNITS": "demo",
    "demo_directory": "demo",
    "demo_groups": "demo",
    "demo_line_list": "demo",
    "demo_units": "demo",
    "extra_member": "demo",
    "init_demo": "demo",
    "COLUMNS": "fileformat",
    "DEFAULT_BUSY_TIMEOUT": "fileformat",
    "DEFAULT_DOMAIN": "fileformat",
    "SCHEMA_VERSION": "schema",
    "ContactResult": "simulator",
    "MessageRow": "simulator",
    "GroupResult": "hr",
    "JoinResult": "hr",
    "LeaveResult": "hr",
    "MoveResult": "hr",
    "BATCH_SIZE": "tenant",
    "ChangeRefused": "tenant",
    "LocalTenant": "tenant",
}

__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_DOMAIN",
    "DEMO_GROUPS",
    "DEMO_LINE_MEMBERS",
    "DEMO_MIN_MEMBERS",
    "DEMO_PEOPLE",
    "DEMO_UNITS",
    "SCHEMA_VERSION",
    "ChangeRefused",
    "ContactResult",
    "GroupResult",
    "JoinResult",
    "LeaveResult",
    "LocalTenant",
    "MessageRow",
    "MoveResult",
    "demo_directory",
    "demo_groups",
    "demo_line_list",
    "demo_units",
    "extra_member",
    "init_demo",
]

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ imports on first use
    from reconciler.providers.local.demo import (
        DEMO_GROUPS,
        DEMO_LINE_MEMBERS,
        DEMO_MIN_MEMBERS,
        DEMO_PEOPLE,
        DEMO_UNITS,
        demo_directory,
        demo_groups,
        demo_line_list,
        demo_units,
        extra_member,
        init_demo,
    )
    from reconciler.providers.local.fileformat import COLUMNS, DEFAULT_BUSY_TIMEOUT, DEFAULT_DOMAIN
    from reconciler.providers.local.hr import GroupResult, JoinResult, LeaveResult, MoveResult
    from reconciler.providers.local.schema import SCHEMA_VERSION
    from reconciler.providers.local.simulator import ContactResult, MessageRow
    from reconciler.providers.local.tenant import BATCH_SIZE, ChangeRefused, LocalTenant


def __getattr__(name: str) -> Any:
    """Import a name on first use (PEP 562); AttributeError for anything else."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value

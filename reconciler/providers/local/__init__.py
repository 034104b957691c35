"""The `local:` provider: a tenant in one SQLite file that behaves like the LINE WORKS console.

tenant: read and apply (on the console model); fileformat: the schema and the file's
lifecycle; rows: rows as model values; simulator: `lwr tenant join/contact/messages`;
demo: the demo company of `lwr tenant init --demo`.

Each name is imported from its module when first used: `lwr plan` opens a tenant and reads
it, and loads neither the demo company nor the simulator (docs/performance.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Name → the submodule that defines it.
_HOMES = {
    "DEMO_LINE_MEMBERS": "demo",
    "DEMO_MIN_MEMBERS": "demo",
    "DEMO_PEOPLE": "demo",
    "demo_directory": "demo",
    "demo_line_list": "demo",
    "extra_member": "demo",
    "init_demo": "demo",
    "COLUMNS": "fileformat",
    "DEFAULT_BUSY_TIMEOUT": "fileformat",
    "DEFAULT_DOMAIN": "fileformat",
    "SCHEMA_VERSION": "fileformat",
    "ContactResult": "simulator",
    "JoinResult": "simulator",
    "MessageRow": "simulator",
    "BATCH_SIZE": "tenant",
    "ChangeRefused": "tenant",
    "LocalTenant": "tenant",
}

__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_DOMAIN",
    "DEMO_LINE_MEMBERS",
    "DEMO_MIN_MEMBERS",
    "DEMO_PEOPLE",
    "SCHEMA_VERSION",
    "ChangeRefused",
    "ContactResult",
    "JoinResult",
    "LocalTenant",
    "MessageRow",
    "demo_directory",
    "demo_line_list",
    "extra_member",
    "init_demo",
]

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ imports on first use
    from reconciler.providers.local.demo import (
        DEMO_LINE_MEMBERS,
        DEMO_MIN_MEMBERS,
        DEMO_PEOPLE,
        demo_directory,
        demo_line_list,
        extra_member,
        init_demo,
    )
    from reconciler.providers.local.fileformat import (
        COLUMNS,
        DEFAULT_BUSY_TIMEOUT,
        DEFAULT_DOMAIN,
        SCHEMA_VERSION,
    )
    from reconciler.providers.local.simulator import ContactResult, JoinResult, MessageRow
    from reconciler.providers.local.tenant import BATCH_SIZE, ChangeRefused, LocalTenant


def __getattr__(name: str) -> Any:
    """Import a name on first use (PEP 562); AttributeError for anything else."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value

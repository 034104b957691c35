"""The `local:` provider: a tenant in one SQLite file that behaves like the LINE WORKS console.

tenant: read and apply (on the console model); schema: the file's tables and upgrades;
fileformat: the file's lifecycle; rows: rows as model values; orgunits: the org chart;
hr: `lwr tenant join/move/leave/group`; simulator: `lwr tenant contact/messages`; demo: the
demo company of `lwr tenant init --demo`.
"""

from typing import TYPE_CHECKING, Any

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
from reconciler.providers.local.schema import SCHEMA_VERSION
from reconciler.providers.local.simulator import ContactResult, MessageRow
from reconciler.providers.local.tenant import BATCH_SIZE, ChangeRefused, LocalTenant

if TYPE_CHECKING:
    from reconciler.providers.local.hr import GroupResult, JoinResult, LeaveResult, MoveResult

#: Loaded on first use: `lwr plan` never simulates HR changes.
_HR = frozenset({"GroupResult", "JoinResult", "LeaveResult", "MoveResult"})

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


def __getattr__(name: str) -> Any:
    if name in _HR:
        from reconciler.providers.local import hr

        return getattr(hr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

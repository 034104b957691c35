"""The `local:` provider: a tenant in one SQLite file that behaves like the LINE WORKS console.

tenant: read and apply (on the console model); fileformat: the schema and the file's
lifecycle; rows: rows as model values; simulator: `lwr tenant join/contact/messages`;
demo: the demo company of `lwr tenant init --demo`.
"""

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

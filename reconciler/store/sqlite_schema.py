"""The SQLite state store's schema: its tables, its version and the migrations between them.

Each migration is SQL applied once, in order, in the transaction that sets `user_version`;
a store's expected tables are what the migrations make of an empty database.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

from reconciler.sqlite_files import tables_of
from reconciler.store.tables import RESULTS_V1, RESULTS_V2, Types

#: Bumped on every schema change; a file with a higher number was written by a newer lwr.
SCHEMA_VERSION = 4
#: "LWRS": marks the file as ours, so a tenant database given by mistake is refused untouched.
APPLICATION_ID = 0x4C575253


_TYPES = Types("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY", "TEXT", " IF NOT EXISTS")


SCHEMA = """
CREATE TABLE IF NOT EXISTS locks (
    tenant_key TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    operation TEXT NOT NULL,
    since TEXT NOT NULL,
    token TEXT NOT NULL
);
{journal}{audit_v1}
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit (tenant_key, seq);
-- The chain's head, so that deleting the newest rows is detected too.
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- Append-only by construction; the hash chain catches whoever drops these triggers.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
""".replace("{journal}", "".join(f"{s};\n" for s in _TYPES.journal())).replace(
    "{audit_v1}", _TYPES.audit("IF NOT EXISTS audit", RESULTS_V1) + ";"
)

#: Version 2: audit results may be `attested` (a manual step an admin confirmed doing in the
#: console). SQLite cannot change a CHECK in place, so the table is rebuilt; rows, and so
#: their hashes, are copied unchanged.
_V2 = """
{audit_v2}
INSERT INTO audit_v2 SELECT * FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v2 RENAME TO audit;
CREATE INDEX audit_by_tenant ON audit (tenant_key, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
""".replace("{audit_v2}", _TYPES.audit("audit_v2", RESULTS_V2) + ";")

#: Version 3: an entry's hash may be an HMAC with LWR_AUDIT_KEY (reconciler/audit.py); older
#: entries are plain sha256, their hashes unchanged. ADD COLUMN fires no UPDATE trigger.
_V3 = """
ALTER TABLE audit ADD COLUMN hash_alg TEXT NOT NULL DEFAULT 'sha256'
    CHECK (hash_alg IN ('sha256', 'hmac-sha256'));
"""

#: Version 4: the last apply's selection per tenant and channel (reconciler/selection.py),
#: one compressed document each. A new table: nothing older is touched.
_V4 = """
CREATE TABLE IF NOT EXISTS selections (
    tenant_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    document BLOB NOT NULL,
    run_id TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (tenant_key, channel)
) WITHOUT ROWID;
"""

#: (version, script): each applied once, in order, in the transaction that sets user_version.
MIGRATIONS = ((1, SCHEMA), (2, _V2), (3, _V3), (4, _V4))


def statements(script: str) -> list[str]:
    """Split the schema script; triggers contain ';' so split on complete statements only."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.startswith("--") and not current:
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


def expected_tables(version: int = SCHEMA_VERSION) -> dict[str, tuple[str, ...]]:
    """The tables and columns of a store at `version`: its migrations run on an empty one."""
    with closing(sqlite3.connect(":memory:")) as conn:
        for number, script in MIGRATIONS:
            if number > version:
                break
            for statement in statements(script):
                conn.execute(statement)
        return tables_of(conn)

"""The SQLite state store's schema: its tables, its version and the migrations between them.

Each migration is SQL applied once, in order, in the transaction that sets `user_version`;
a store's expected tables are what the migrations make of an empty database.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

from reconciler.sqlite_files import (
    tables_of,
)

#: Bumped on every schema change; a file with a higher number was written by a newer lwr.
SCHEMA_VERSION = 3
#: "LWRS": marks the file as ours, so a tenant database given by mistake is refused untouched.
APPLICATION_ID = 0x4C575253


def _audit_table(name: str, results: tuple[str, ...]) -> str:
    """The audit table's CREATE statement, whose allowed `result`s grew with version 2."""
    allowed = ", ".join(f"'{r}'" for r in results)
    return f"""CREATE TABLE {name} (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    tenant_key TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    change_id TEXT NOT NULL,
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ({allowed})),
    error TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);"""


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
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    tenant_key TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    actor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted'))
);
CREATE INDEX IF NOT EXISTS runs_by_tenant ON runs (tenant_key, seq);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    change_id TEXT NOT NULL,
    change TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('started', 'done', 'failed')),
    error TEXT,
    at TEXT NOT NULL,
    UNIQUE (run_id, change_id)
);
{audit_v1}
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
""".replace("{audit_v1}", _audit_table("IF NOT EXISTS audit", ("applied", "recovered", "failed")))

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
""".replace("{audit_v2}", _audit_table("audit_v2", ("applied", "attested", "recovered", "failed")))

#: Version 3: an entry's hash may be an HMAC with LWR_AUDIT_KEY (reconciler/audit.py); older
#: entries are plain sha256, their hashes unchanged. ADD COLUMN fires no UPDATE trigger.
_V3 = """
ALTER TABLE audit ADD COLUMN hash_alg TEXT NOT NULL DEFAULT 'sha256'
    CHECK (hash_alg IN ('sha256', 'hmac-sha256'));
"""

#: (version, script): each applied once, in order, in the transaction that sets user_version.
MIGRATIONS = ((1, SCHEMA), (2, _V2), (3, _V3))


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


def expected_tables() -> dict[str, tuple[str, ...]]:
    """The tables and columns of a store this lwr made: its migrations run on an empty one."""
    with closing(sqlite3.connect(":memory:")) as conn:
        for _, script in MIGRATIONS:
            for statement in statements(script):
                conn.execute(statement)
        return tables_of(conn)

"""The state store's journal and audit tables, written once for both backends.

Each backend says its own types: `key`, an auto-numbered primary key; `seq`, the audit's
(numbered by the chain, not the database); `text`. SQLite keeps a table's CREATE text in
the file (sqlite_master), so its statements come out as SQLite files have always had them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Types:
    """One backend's words for the tables' column types and for "create if missing"."""

    key: str  # an auto-numbered primary key
    seq: str  # the audit's primary key, given by the chain
    text: str
    new: str = ""  # " IF NOT EXISTS" where creating is repeated on every open

    def journal(self) -> tuple[str, ...]:
        """Runs, their index, and the entries of each run (docs/reliability.md)."""
        t = self.text
        return (
            f"""CREATE TABLE{self.new} runs (
    seq {self.key},
    run_id {t} NOT NULL UNIQUE,
    tenant_key {t} NOT NULL,
    plan_digest {t} NOT NULL,
    actor {t} NOT NULL,
    started_at {t} NOT NULL,
    finished_at {t},
    status {t} NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted'))
)""",
            f"CREATE INDEX{self.new} runs_by_tenant ON runs (tenant_key, seq)",
            f"""CREATE TABLE{self.new} entries (
    seq {self.key},
    run_id {t} NOT NULL REFERENCES runs (run_id),
    change_id {t} NOT NULL,
    change {t} NOT NULL,
    state {t} NOT NULL CHECK (state IN ('started', 'done', 'failed')),
    error {t},
    at {t} NOT NULL,
    UNIQUE (run_id, change_id)
)""",
        )

    def audit(self, name: str, results: tuple[str, ...]) -> str:
        """The audit table (named `name`), whose allowed `result`s grew with version 2."""
        t = self.text
        allowed = ", ".join(f"'{r}'" for r in results)
        return f"""CREATE TABLE {name} (
    seq {self.seq},
    at {t} NOT NULL,
    tenant_key {t} NOT NULL,
    domain {t} NOT NULL,
    run_id {t} NOT NULL,
    actor {t} NOT NULL,
    change_id {t} NOT NULL,
    action {t} NOT NULL,
    channel {t} NOT NULL,
    target {t},
    before {t} NOT NULL,
    after {t} NOT NULL,
    result {t} NOT NULL CHECK (result IN ({allowed})),
    error {t},
    prev_hash {t} NOT NULL,
    hash {t} NOT NULL
)"""


#: The results an audit row could have in version 1 (version 2 added `attested`).
RESULTS_V1 = ("applied", "recovered", "failed")
RESULTS_V2 = ("applied", "attested", "recovered", "failed")

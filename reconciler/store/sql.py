"""SqlStateStore: the journal, run records and audit chain over any DB-API connection.

Everything but the connection, the schema and the tenant lock is the same SQL in SQLite and
PostgreSQL, so it lives here once, on a SqlSession (store/session.py); a backend (sqlite.py,
postgres.py) supplies the connection, how a transaction begins, its error type and its lock.
"""

from __future__ import annotations

import json
import secrets
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, cast

from reconciler.actions import Change
from reconciler.audit import AUDIT_COLUMNS, AuditKey, ChainCheck, audit_entry, load_audit_key
from reconciler.change_json import changes_json
from reconciler.errors import StateError
from reconciler.i18n import N_, Said
from reconciler.store.base import (
    GENESIS_HASH,
    AuditEntry,
    AuditHead,
    AuditRecord,
    EntryOutcome,
    EntryState,
    JournalEntry,
    LockHolder,
    RunRecord,
    RunStatus,
    VerifyResult,
    canonical_json,
    row_hash,
    utc_now,
)
from reconciler.store.session import SqlSession

__all__ = ["AUDIT_COLUMNS", "SqlSession", "SqlStateStore", "new_run_id"]

RUN_COLUMNS = "run_id, tenant_key, plan_digest, actor, started_at, finished_at, status"


def new_run_id() -> str:
    """Sortable by time, unique by chance: 20240501T120000Z-1a2b3c4d."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


class SqlStateStore(SqlSession):
    """The StateStore methods every SQL backend shares; subclasses own connection and lock."""

    #: Reads the audit chain's head, locking it for the rest of the write transaction.
    _HEAD_FOR_UPDATE: ClassVar[str] = "SELECT seq, hash FROM audit_head WHERE id = 1"

    @abstractmethod
    def lock(self, tenant_key: str, operation: str) -> AbstractContextManager[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder."""

    @abstractmethod
    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""

    @abstractmethod
    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock record whoever holds it; return the holder removed."""

    # -- journal -------------------------------------------------------------------------------

    @cached_property
    def audit_key(self) -> AuditKey | None:
        """LWR_AUDIT_KEY (or the file LWR_AUDIT_KEY_FILE names): what new entries are MACed
        with and keyed entries are checked with; None when unset."""
        return load_audit_key()

    def begin_run(self, tenant_key: str, plan_digest: str, actor: str) -> RunRecord:
        """Record a new run in status `running`.

        Loads the audit key first: a bad key setting must stop an apply before the tenant is
        touched, not when its first batch is audited.
        """
        _ = self.audit_key
        run = RunRecord(
            run_id=new_run_id(),
            tenant_key=tenant_key,
            plan_digest=plan_digest,
            actor=actor,
            started_at=utc_now(),
            finished_at=None,
            status="running",
        )
        with self._write(N_("state store {location}: cannot begin a run: {reason}")):
            self._execute(
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.tenant_key,
                    run.plan_digest,
                    run.actor,
                    run.started_at,
                    run.finished_at,
                    run.status,
                ),
            )
        return run

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's final status and finish time."""
        with self._write(N_("state store {location}: cannot finish a run: {reason}")):
            self._execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, utc_now(), run_id),
            )

    def runs(
        self, tenant_key: str | None = None, *, status: RunStatus | None = None
    ) -> list[RunRecord]:
        """Runs oldest first, optionally only one tenant's and only those in one status."""
        where, params = _where(tenant_key=tenant_key, status=status)
        with self._errors(N_("state store {location}: cannot read runs: {reason}")):
            rows = self._execute(
                f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY seq", params
            ).fetchall()
        return [_run(row) for row in rows]

    def last_run(self, tenant_key: str) -> RunRecord | None:
        """The tenant's most recently begun run."""
        return self._latest_run("tenant_key = ?", (tenant_key,))

    def applied_run(self, tenant_key: str, plan_digest: str) -> RunRecord | None:
        """The tenant's latest run of this plan that finished `done`, if any (replay guard)."""
        where = "tenant_key = ? AND plan_digest = ? AND status = 'done'"
        return self._latest_run(where, (tenant_key, plan_digest))

    def _latest_run(self, where: str, params: Sequence[Any]) -> RunRecord | None:
        query = f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} ORDER BY seq DESC LIMIT 1"
        return self._one(
            N_("state store {location}: cannot read runs: {reason}"), query, params, _run
        )

    def entries(self, run_id: str) -> list[JournalEntry]:
        """A run's journal entries in the order they were started."""
        with self._errors(N_("state store {location}: cannot read the journal: {reason}")):
            rows = self._execute(
                "SELECT change, state, error, at FROM entries WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [
            JournalEntry(
                run_id=run_id,
                change=Change.from_json(json.loads(change)),
                state=cast(EntryState, state),
                error=error,
                at=at,
            )
            for change, state, error, at in rows
        ]

    def mark_started(self, run_id: str, changes: Sequence[Change]) -> None:
        """Journal `started` for changes about to be applied; committed before returning."""
        at = utc_now()
        texts = changes_json(changes)
        rows = [(run_id, c.id, text, "started", at) for c, text in zip(changes, texts, strict=True)]
        with self._write(N_("state store {location}: cannot write the journal: {reason}")):
            self._insert("entries", ("run_id", "change_id", "change", "state", "at"), rows)

    def complete(
        self, run_id: str, outcomes: Sequence[EntryOutcome], audit: Sequence[AuditRecord]
    ) -> None:
        """Settle journal entries and append their audit rows in one transaction."""
        with self._write(N_("state store {location}: cannot write the journal: {reason}")):
            settled = self._settle(run_id, outcomes, utc_now())
            if settled != len(outcomes):
                # A bug, not a user error: settling what was never started would lie.
                raise StateError(
                    Said.of(
                        "run {run_id}: {missing} of {n} settled changes were never journaled "
                        "as started",
                        run_id=run_id,
                        missing=len(outcomes) - settled,
                        n=len(outcomes),
                    )
                )
            self._append(audit)

    def _settle(self, run_id: str, outcomes: Sequence[EntryOutcome], at: str) -> int:
        """Set the outcome of started entries; returns how many rows it changed."""
        return self._executemany(
            "UPDATE entries SET state = ?, error = ?, at = ? WHERE run_id = ? AND change_id = ?",
            [(o.state, o.error, at, run_id, o.change_id) for o in outcomes],
        )

    # -- the last apply's selection (reconciler/selection.py) ---------------------------------

    def record_selection(
        self, tenant_key: str, documents: Mapping[str, bytes], run_id: str | None
    ) -> None:
        """Keep each channel's selection document (reconciler.selection.encode) as the last
        apply's, replacing what an earlier apply left; one transaction."""
        at = utc_now()
        with self._write(N_("state store {location}: cannot record the selection: {reason}")):
            self._executemany(
                "INSERT INTO selections (tenant_key, channel, document, run_id, at) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (tenant_key, channel) DO UPDATE SET "
                "document = excluded.document, run_id = excluded.run_id, at = excluded.at",
                [(tenant_key, ch, doc, run_id, at) for ch, doc in documents.items()],
            )

    def last_selection(self, tenant_key: str) -> dict[str, bytes]:
        """The last apply's selection document of each channel of the tenant that has one."""
        with self._errors(N_("state store {location}: cannot read the selection: {reason}")):
            rows = self._execute(
                "SELECT channel, document FROM selections WHERE tenant_key = ?", (tenant_key,)
            ).fetchall()
        return {channel: bytes(document) for channel, document in rows}

    # -- audit ---------------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows to the chain in one transaction."""
        with self._write(N_("state store {location}: cannot append to the audit log: {reason}")):
            self._append(records)

    def _append(self, records: Sequence[AuditRecord]) -> None:
        """Chain `records` onto the head; the caller's write transaction makes it atomic.

        The head is read with a lock (`_HEAD_FOR_UPDATE`), so writers of other tenants append
        one after the other and the chain stays one line across every runner.
        """
        if not records:
            return
        key = self.audit_key
        mac, alg = (key.mac(), "hmac-sha256") if key else (None, "sha256")
        head = self._execute(self._HEAD_FOR_UPDATE).fetchone()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
        at = utc_now()
        rows = []
        for record in records:
            seq += 1
            before, after = canonical_json(record.before), canonical_json(record.after)
            digest = row_hash(prev, seq, at, record, before, after, mac)
            rows.append(
                (
                    seq,
                    at,
                    record.tenant_key,
                    record.domain,
                    record.run_id,
                    record.actor,
                    record.change_id,
                    record.action,
                    record.channel,
                    record.target,
                    before,
                    after,
                    record.result,
                    record.error,
                    prev,
                    digest,
                    alg,
                )
            )
            prev = digest
        self._insert("audit", AUDIT_COLUMNS.split(", "), rows)
        self._execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, prev),
        )

    def audit_entries(
        self, tenant_key: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit rows oldest first; with `limit`, only the newest `limit` of them."""
        where, params = _where(tenant_key=tenant_key)
        statement = f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY seq DESC"
        args: tuple[str | int, ...] = params
        if limit is not None:
            statement += " LIMIT ?"
            args = (*params, max(limit, 0))
        with self._errors(N_("state store {location}: cannot read the audit log: {reason}")):
            rows = self._execute(statement, args).fetchall()
        return [audit_entry(row) for row in reversed(rows)]

    def verify_audit(self, anchor: AuditHead | None = None) -> VerifyResult:
        """Recompute the whole chain; report the first entry that does not match.

        Catches edited, deleted (in the middle), inserted and reordered entries; the newest
        deleted with the store's head rewound, or a consistent rewrite of unkeyed entries,
        only against `anchor` (a head kept outside the store); a consistent rewrite of keyed
        entries only with the key (reconciler.audit has the rules). Reads one snapshot, so an
        apply appending meanwhile is not mistaken for tampering.
        """
        check = ChainCheck(self.audit_key, anchor)
        with self._snapshot(N_("state store {location}: cannot read the audit log: {reason}")):
            head = self._execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            for row in self._execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"):
                failed = check.feed(row)
                if failed is not None:
                    return failed
        return check.finish(head)

    def audit_count(self, tenant_key: str | None = None) -> int:
        """How many audit rows there are (of `tenant_key`)."""
        where, params = _where(tenant_key=tenant_key)
        with self._errors(N_("state store {location}: cannot read the audit log: {reason}")):
            row = self._execute(f"SELECT COUNT(*) FROM audit {where}", params).fetchone()
        return int(row[0])

    def audit_head(self) -> AuditHead:
        """The newest entry's seq and hash (0 and GENESIS_HASH for an empty log).

        Refused when the store's own head disagrees with the newest entry: a head worth
        keeping is one the log agrees with (`lwr audit --verify` says what is wrong).
        """
        with self._snapshot(N_("state store {location}: cannot read the audit log: {reason}")):
            head = self._execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            newest = self._execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        stored = AuditHead(head[0], head[1]) if head else AuditHead(0, GENESIS_HASH)
        found = AuditHead(newest[0], newest[1]) if newest else AuditHead(0, GENESIS_HASH)
        if stored != found:
            raise StateError(
                Said.of(
                    "state store {location}: the audit log's head records entry {stored} but "
                    "its newest entry is {found}; run `lwr audit --verify` to see what is wrong",
                    location=self.location,
                    stored=stored.seq,
                    found=found.seq,
                )
            )
        return found


def _run(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from a row of RUN_COLUMNS (the dataclass's fields, in order)."""
    return RunRecord(*row)


def _where(**filters: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause from column=value filters, skipping the None ones."""
    used = {column: value for column, value in filters.items() if value is not None}
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(f"{c} = ?" for c in used), tuple(used.values())

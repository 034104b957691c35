"""The local tenant: an embedded SQLite file that behaves like the LINE WORKS console.

Reads give the model's TenantState; apply runs the console model (reconciler.console) on
the part of the state a batch touches and writes back what it changed, in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from reconciler.actions import Action, Change, Execution
from reconciler.errors import TenantError, TenantRuleError
from reconciler.i18n import Said
from reconciler.model import ChannelName, TenantState
from reconciler.orgchart import OrgChart
from reconciler.providers.base import BatchOutcome, Provider, Refusal
from reconciler.providers.local.fileformat import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_DOMAIN,
    build,
    check_domain,
    check_header,
    check_with_wal,
    connect,
    explain,
    verify,
)
from reconciler.providers.local.rows import (
    emails,
    load_settings,
    one,
    scoped_state,
    with_lists,
    write_changes,
)
from reconciler.providers.local.schema import SCHEMA_VERSION
from reconciler.sqlite_files import REREAD, FileStamp, changed_since, changed_while_read
from reconciler.uris import local_key

if TYPE_CHECKING:  # applying, the HR changes and the simulations import these when used:
    # `plan` only reads
    from reconciler import console
    from reconciler.providers.local.hr import GroupResult, JoinResult, LeaveResult, MoveResult
    from reconciler.providers.local.simulator import ContactResult, MessageRow

T = TypeVar("T")

#: Changes per journal batch of the executor.
BATCH_SIZE = 500


class ChangeRefused(TenantRuleError):
    """The console's rules refused one change of an apply; nothing of the batch was applied."""

    def __init__(self, change_id: str, rule: str) -> None:
        self.change_id = change_id
        self.rule = rule
        super().__init__(
            Said.of(
                "change {change} refused: {reason}; nothing of this batch was applied",
                change=change_id,
                reason=rule,
            )
        )


class LocalTenant(Provider):
    """A `local:` tenant: implements the Provider protocol and the console's simulations."""

    batch_size: int = BATCH_SIZE
    READS_ORG_CHART = True

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Wrap an open, verified connection; use `LocalTenant.open` or `init_demo` instead."""
        self.path = path
        self.key = local_key(path)
        self._conn = conn
        #: The file is an older lwr's with emails not lower-cased: compare them lower-cased.
        #: Learnt from the domain row, which every transaction reads first.
        self._legacy = False
        #: Set when opened `immutable` (read-only, no -wal): what the file looked like then.
        self._stamp: FileStamp | None = None
        self._busy_timeout = DEFAULT_BUSY_TIMEOUT
        #: The file's spelling of each member email the current apply names.
        self._spelled: dict[str, str] = {}
        #: The file's schema version: one of an older lwr opened read-only has no org chart.
        self._version = SCHEMA_VERSION

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        domain: str = DEFAULT_DOMAIN,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        readonly: bool = False,
    ) -> LocalTenant:
        """Open the tenant at `path`; with `create`, make an empty one (of `domain`) if missing.

        A file that is not an lwr tenant, is damaged, or comes from a newer lwr raises
        TenantError and is never written to. `readonly` (the read-only commands): nothing is
        written or created, not even SQLite's side files, so it works on read-only files and
        directories; such a tenant cannot apply.
        """
        file = Path(path).absolute()
        if not file.exists():
            if not create or readonly:
                raise TenantError(
                    Said.of(
                        "no tenant at {file}: create one with `lwr tenant init --demo --tenant "
                        "local:{path}` (without --demo: an empty one)",
                        file=str(file),
                        path=str(path),
                    )
                )
            check_domain(domain)
            build(file, domain, seed=None, overwrite=False)
        if not file.is_file():
            raise TenantError(Said.of("local tenant {file} is not a regular file", file=str(file)))
        damaged = check_header(file)
        if damaged is not None:
            check_with_wal(file, damaged, busy_timeout)
        conn, stamp = connect(file, busy_timeout, readonly=readonly)
        try:
            version = verify(conn, file, readonly=readonly)
        except BaseException:
            conn.close()
            raise
        tenant = cls(file.resolve(), conn)
        tenant._stamp, tenant._busy_timeout, tenant._version = stamp, busy_timeout, version
        return tenant

    # ------------------------------------------------------------------ Provider protocol

    def read(self) -> TenantState:
        """The whole page and directory from one consistent snapshot."""
        return self._read("read", self._state)

    def _state(self, conn: sqlite3.Connection) -> TenantState:
        domain = self._domain(conn)
        directory = self._directory(conn)
        channels = {
            name: with_lists(conn, name, ch, directory, self._legacy)
            for name, ch in load_settings(conn).items()
        }
        return TenantState(domain=domain, directory=directory, channels=channels)

    def directory(self) -> frozenset[str]:
        """Login emails of every member."""

        def read(conn: sqlite3.Connection) -> frozenset[str]:
            self._domain(conn)
            return self._directory(conn)

        return self._read("read the directory", read)

    def org_chart(self, *, groups: frozenset[str] | None = None) -> OrgChart:
        """Org units and groups with their members, from one consistent snapshot; a file of
        an older lwr opened read-only has none yet (it gains the tables when next written).
        Every group is read whatever `groups` names: one local query costs no requests."""
        if self._version < SCHEMA_VERSION:
            return OrgChart()

        from reconciler.providers.local.orgunits import read_chart

        def read(conn: sqlite3.Connection) -> OrgChart:
            self._domain(conn)
            return read_chart(conn, self._legacy)

        return self._read("read the org chart", read)

    def domain(self) -> str:
        """The tenant's domain, e.g. example.co.jp."""
        return self._read("read the domain", self._domain)

    def execution(self, action: Action) -> Execution:
        """The local tenant carries out every action itself."""
        return "local"

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply `changes` in order in one transaction: all of them, or none and an error.

        A change whose `before` is set must find the tenant in that state (a second apply of
        the same plan is refused rather than silently repeated).
        """
        if not changes:
            return
        from reconciler import console

        with self._transaction("apply", write=True) as conn:
            self._domain(conn)
            state, self._spelled = scoped_state(conn, changes, self._legacy)
            for run in console.runs(changes):
                try:
                    after = console.step(state, run)
                except console.RuleRefused as exc:
                    raise ChangeRefused(exc.change_id, exc.reason) from exc
                write_changes(conn, state, after, self._spelled)
                state = after

    def apply_each(self, changes: Sequence[Change], *, keep_going: bool = True) -> BatchOutcome:
        """Apply in order in one transaction; a change the console refuses is reported and
        left out, the rest committed (or, without `keep_going`, the rest left unattempted).

        The console refuses what it would refuse an admin clicking through the page: a
        member not in the directory (one who left while the apply ran), a member listed
        already or not listed, a list edit while the channel is off or grants all members.
        """
        applied: list[str] = []
        refused: list[Refusal] = []
        if not changes:
            return BatchOutcome()
        from reconciler import console

        with self._transaction("apply", write=True) as conn:
            self._domain(conn)
            state, self._spelled = scoped_state(conn, changes, self._legacy)
            for run in console.runs(changes):
                while run:
                    try:
                        after = console.step(state, run)
                    except console.RuleRefused as exc:
                        run, done = self._refused(run, exc, refused)
                        if done:  # what the run did before the refused change stands
                            after = console.step(state, done)
                            write_changes(conn, state, after, self._spelled)
                            state = after
                            applied += [c.id for c in done]
                        if not keep_going:
                            return BatchOutcome(tuple(applied), tuple(refused))
                        continue
                    write_changes(conn, state, after, self._spelled)
                    state = after
                    applied += [c.id for c in run]
                    run = []
        return BatchOutcome(tuple(applied), tuple(refused))

    @staticmethod
    def _refused(
        run: list[Change], exc: console.RuleRefused, refused: list[Refusal]
    ) -> tuple[list[Change], list[Change]]:
        """Record a refusal; return (what of the run is left to try, what came before it).

        A rule about the whole list (off, or "grant to all members") refuses every change of
        the run at once; a rule about one member refuses that change only.
        """
        from reconciler import console

        if exc.rule in (console.LIST_FROZEN, console.ALL_MEMBERS_LIST):
            refused += [Refusal(c.id, exc.reason) for c in run]
            return [], []
        at = next((i for i, c in enumerate(run) if c.id == exc.change_id), 0)
        refused_id = run[at].id
        refused.append(Refusal(refused_id, exc.reason))
        return run[at + 1 :], run[:at]

    # ------------------------------------------------------------------ simulations

    def join(self, email: str, name: str | None = None, orgunits: Sequence[str] = ()) -> JoinResult:
        """A new hire joins the directory (and `orgunits`, by name or path); auto-grant adds
        them to the lists it applies to."""
        from reconciler.providers.local import hr

        return self._hr("join", lambda conn: hr.join(conn, email, name, self._legacy, orgunits))

    def move(self, email: str, orgunits: Sequence[str]) -> MoveResult:
        """The member moves to `orgunits` (names or paths), out of every other unit."""
        from reconciler.providers.local import hr

        return self._hr("move", lambda conn: hr.move(conn, email, orgunits, self._legacy))

    def leave(self, email: str) -> LeaveResult:
        """The member leaves the company: out of the directory, lists, units and groups."""
        from reconciler.providers.local import hr

        return self._hr("leave", lambda conn: hr.leave(conn, email, self._legacy))

    def edit_group(
        self, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> GroupResult:
        """Members join (`add`) or leave (`remove`) the directory group `name`."""
        from reconciler.providers.local import hr

        return self._hr(
            "edit a group", lambda conn: hr.edit_group(conn, name, add, remove, self._legacy)
        )

    def _hr(self, what: str, change: Callable[[sqlite3.Connection], T]) -> T:
        with self._transaction(what, write=True) as conn:
            self._domain(conn)
            return change(conn)

    def contact(
        self,
        member: str,
        external_id: str,
        channel: ChannelName | str,
        external_name: str | None = None,
    ) -> ContactResult:
        """An external user adds `member`; refused unless the console would let them."""
        from reconciler.providers.local.simulator import channel_name, contact

        name = channel_name(channel)
        external_id = external_id.strip()
        if not external_id:
            raise TenantRuleError(Said.of("an external user needs a non-empty id"))
        with self._transaction("contact", write=True) as conn:
            self._domain(conn)
            return contact(conn, member, external_id, name, external_name, self._legacy)

    def messages(
        self, search: str | None = None, channel: ChannelName | str | None = None
    ) -> list[MessageRow]:
        """Conversation history as Admin Audit shows it, hidden rooms included, oldest first."""
        from reconciler.providers.local.simulator import channel_name, messages

        name = None if channel is None else channel_name(channel)
        return self._read("search messages", lambda conn: messages(conn, search, name))

    def close(self) -> None:
        """Close the connection; SQLite checkpoints the WAL when the last one closes."""
        self._conn.close()

    def __repr__(self) -> str:
        return f"LocalTenant({self.key!r})"

    # ------------------------------------------------------------------ plumbing

    def _directory(self, conn: sqlite3.Connection) -> frozenset[str]:
        return emails(conn, "SELECT email FROM members", legacy=self._legacy)

    def _domain(self, conn: sqlite3.Connection) -> str:
        """The domain, lower-cased (domains are case-insensitive).

        An older lwr stored the domain as given and seeded the demo's emails with it: a
        mixed-case domain row marks a file whose emails must be compared lower-cased.
        """
        stored_domain = str(one(conn, "SELECT domain FROM meta"))
        self._legacy = stored_domain != stored_domain.lower()
        return stored_domain.lower()

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: a consistent snapshot for reads, the write lock up front for writes.

        Any SQLite failure rolls back and becomes a TenantError; rule refusals pass through.
        """
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise TenantError(
                Said.of(
                    "local tenant {path}: {operation} failed: {reason}",
                    path=str(self.path),
                    operation=what,
                    reason=explain(exc, self.path),
                )
            ) from exc

    def _read(self, what: str, read: Callable[[sqlite3.Connection], T]) -> T:
        """`read` in one read transaction; an immutable read (which sees no writer) is done
        again when a writer changed the file meanwhile (sqlite_files.REREAD)."""

        def once() -> T:
            with self._transaction(what, write=False) as conn:
                return read(conn)

        return REREAD.read(
            once,
            changed=lambda: changed_since(self._stamp, self.path),
            reopen=self._reopen,
            gave_up=lambda n: TenantError(changed_while_read("local tenant", self.path, n)),
        )

    def _reopen(self) -> None:
        self._conn.close()
        self._conn, self._stamp = connect(self.path, self._busy_timeout, readonly=True)

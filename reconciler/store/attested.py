"""Attested state: what lwr knows about a tenant but cannot read through its API.

Kept in the state store's place (`--state` / LWR_STATE): a small SQLite file beside the
journal, or the PostgreSQL state database every runner shares (tables `attested_settings`
and `attested_members`, made by `lwr state migrate`). Each value says where it came from:
`attested` (an admin confirmed it in the console) or `applied` (lwr's own API call
succeeded). The public API is `open_attested`, `AttestedStore.load` and
`AttestedStore.record`; a provider uses nothing else.

Read-only commands (plan, show, drift, ...) open it with `readonly=True`: nothing is created
or written then, and an SQLite file that does not exist yet reads as "nothing known".
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from reconciler.errors import StateError
from reconciler.i18n import N_, Said
from reconciler.model import ChannelName
from reconciler.sqlite_files import (
    REREAD,
    FileStamp,
    changed_since,
    changed_while_read,
    connect_readonly,
)
from reconciler.store.postgres import PostgresSession
from reconciler.store.sql import SqlSession
from reconciler.store.sqlite import SqliteSession
from reconciler.words import utc_now

__all__ = [
    "FILE_NAME",
    "MEMBERS",
    "AttestedStore",
    "ChannelKnowledge",
    "Fact",
    "Source",
    "open_attested",
]

Source = Literal["attested", "applied"]
FILE_NAME = "attested.db"
MEMBERS = "members"  # a pseudo-field: set once the list is known at all

#: The SQLite file's own schema; PostgreSQL's is in the state migrations (store/postgres.py).
_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settings (
        tenant TEXT NOT NULL, channel TEXT NOT NULL, field TEXT NOT NULL,
        value TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (tenant, channel, field)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS members (
        tenant TEXT NOT NULL, channel TEXT NOT NULL, email TEXT NOT NULL,
        source TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (tenant, channel, email)) WITHOUT ROWID""",
)


@dataclass(frozen=True)
class Fact:
    """One known value and where it came from."""

    value: Any
    source: Source
    actor: str
    at: str


@dataclass(frozen=True)
class ChannelKnowledge:
    """What is known about one channel; a missing field is unknown."""

    facts: dict[str, Fact] = field(default_factory=dict)
    members: frozenset[str] = frozenset()


class AttestedStore(SqlSession):
    """The attested state of any number of tenants (keyed by provider key), in either backend.

    The SQL is shared; the two subclasses differ in how they connect and name their tables.
    """

    _SETTINGS: ClassVar[str]
    _MEMBERS: ClassVar[str]

    def _check_writable(self) -> None:
        """Raise StateError when this store may not be written; any store may by default."""

    def load(self, tenant: str) -> dict[ChannelName, ChannelKnowledge]:
        """Everything known about `tenant`, per channel."""
        with self._snapshot(N_("state store {location}: cannot read the attested state: {reason}")):
            settings = self._execute(
                f"SELECT channel, field, value, source, actor, at FROM "
                f"{self._SETTINGS} WHERE tenant = ?",
                (tenant,),
            ).fetchall()
            listed = self._execute(
                f"SELECT channel, email FROM {self._MEMBERS} WHERE tenant = ?", (tenant,)
            ).fetchall()
        return _knowledge(settings, listed)

    def record(
        self,
        tenant: str,
        channel: ChannelName,
        values: dict[str, Any],
        source: Source,
        actor: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
    ) -> None:
        """Record settings and list changes of one channel in one transaction."""
        self._check_writable()
        now = utc_now("seconds")
        with self._write(N_("state store {location}: cannot write the attested state: {reason}")):
            self._executemany(
                f"INSERT INTO {self._SETTINGS} (tenant, channel, field, value, source, actor, "
                "at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, channel, field) DO "
                "UPDATE SET value = excluded.value, source = excluded.source, "
                "actor = excluded.actor, at = excluded.at",
                [
                    (
                        tenant,
                        channel.value,
                        k,
                        json.dumps(v, ensure_ascii=False),
                        source,
                        actor,
                        now,
                    )
                    for k, v in values.items()
                ],
            )
            if replace is not None:
                self._execute(
                    f"DELETE FROM {self._MEMBERS} WHERE tenant = ? AND channel = ?",
                    (tenant, channel.value),
                )
                add = replace
            self._executemany(
                f"INSERT INTO {self._MEMBERS} (tenant, channel, email, source, at) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (tenant, channel, email) DO UPDATE SET "
                "source = excluded.source, at = excluded.at",
                [(tenant, channel.value, e, source, now) for e in add],
            )
            self._executemany(
                f"DELETE FROM {self._MEMBERS} WHERE tenant = ? AND channel = ? AND email = ?",
                [(tenant, channel.value, e) for e in remove],
            )


class SqliteAttestedStore(SqliteSession, AttestedStore):
    """The attested state in its own SQLite file beside the journal."""

    _SETTINGS, _MEMBERS = "settings", "members"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open, creating the file and its folder if needed; `readonly`: create and write
        nothing (a file not there yet is read as "nothing known")."""
        self.path = path
        self._conn = None
        self._stamp: FileStamp | None = None
        self._readonly = readonly
        try:
            if readonly:
                if path.exists():
                    self._conn, self._stamp = connect_readonly(path, 10.0)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Member emails are personal data: owner-only from the first byte.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _SQLITE_SCHEMA:
                self._conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise _cannot_open(path, exc) from exc

    def load(self, tenant: str) -> dict[ChannelName, ChannelKnowledge]:
        """Everything known about `tenant`; read again (sqlite_files.REREAD) when a writer
        changed the file while it was read without locks (sqlite_files.connect_readonly)."""
        if self._conn is None:
            return _knowledge([], [])
        read = super().load
        return REREAD.read(
            lambda: read(tenant),
            changed=lambda: changed_since(self._stamp, self.path),
            reopen=self._reopen,
            gave_up=lambda n: StateError(changed_while_read("the attested state", self.path, n)),
        )

    def _reopen(self) -> None:
        if self._conn is not None:
            self._conn.close()
        try:
            self._conn, self._stamp = connect_readonly(self.path, 10.0)
        except sqlite3.Error as exc:
            raise _cannot_open(self.path, exc) from exc

    def _check_writable(self) -> None:
        """A store opened read-only refuses to record (a bug if reached)."""
        if self._readonly or self._conn is None:
            raise StateError(
                Said.of("the attested state {path} was opened read-only", path=str(self.path))
            )

    def close(self) -> None:
        """Close the file, if it was opened."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresAttestedStore(PostgresSession, AttestedStore):
    """The attested state in the shared PostgreSQL state (tables made by `lwr state migrate`);
    connecting creates nothing, so read-only commands need no special case."""

    _SETTINGS, _MEMBERS = "attested_settings", "attested_members"


def _knowledge(
    settings: Iterable[tuple[str, str, str, Source, str, str]], listed: Iterable[tuple[str, str]]
) -> dict[ChannelName, ChannelKnowledge]:
    facts: dict[ChannelName, dict[str, Fact]] = {c: {} for c in ChannelName}
    members: dict[ChannelName, set[str]] = {c: set() for c in ChannelName}
    for channel, name, value, source, actor, at in settings:
        facts[ChannelName(channel)][name] = Fact(json.loads(value), source, actor, at)
    for channel, email in listed:
        members[ChannelName(channel)].add(email)
    return {c: ChannelKnowledge(facts[c], frozenset(members[c])) for c in ChannelName}


def open_attested(
    state_dir: Path, state_url: str | None, *, readonly: bool = False
) -> AttestedStore:
    """The attested state where the state store is: PostgreSQL when `state_url` names it
    (its tables must exist: `lwr state migrate`), else `attested.db` in `state_dir`.
    `readonly`: for commands that only read; nothing is created or written."""
    if state_url:
        return PostgresAttestedStore(state_url)
    return SqliteAttestedStore(state_dir / FILE_NAME, readonly=readonly)


def _cannot_open(path: object, exc: Exception) -> StateError:
    """Why the store at `path` could not be opened, in any language (reconciler.i18n)."""
    return StateError(
        Said.of("cannot open the attested state {path}: {reason}", path=str(path), reason=str(exc))
    )

"""Attested state: what lwr knows about a LINE WORKS tenant but cannot read through the API.

Kept in the state store's place (`--state` / LWR_STATE): a small SQLite file beside the
journal, or the PostgreSQL state database every runner shares. Each value says where it came
from: `attested` (an admin confirmed it in the console) or `applied` (lwr's own API call
succeeded).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from reconciler.errors import StateError
from reconciler.model import ChannelName
from reconciler.store.postgres import PostgresSession
from reconciler.store.sql import SqlSession
from reconciler.store.sqlite import SqliteSession

Source = Literal["attested", "applied"]
FILE_NAME = "attested.db"
#: The page's settings per channel, by the names of the desired-state file.
FIELDS = ("enabled", "all_members", "auto_grant_new_members", "restrict_file_transfer",
          "greeting_enabled", "greeting_message")
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

    def load(self, tenant: str) -> dict[ChannelName, ChannelKnowledge]:
        """Everything known about `tenant`, per channel."""
        facts: dict[ChannelName, dict[str, Fact]] = {c: {} for c in ChannelName}
        members: dict[ChannelName, set[str]] = {c: set() for c in ChannelName}
        with self._errors("read the attested state"):
            rows = self._execute(f"SELECT channel, field, value, source, actor, at FROM "
                                 f"{self._SETTINGS} WHERE tenant = ?", (tenant,)).fetchall()
            for channel, name, value, source, actor, at in rows:
                facts[ChannelName(channel)][name] = Fact(json.loads(value), source, actor, at)
            for channel, email in self._execute(
                    f"SELECT channel, email FROM {self._MEMBERS} WHERE tenant = ?",
                    (tenant,)).fetchall():
                members[ChannelName(channel)].add(email)
        return {c: ChannelKnowledge(facts[c], frozenset(members[c])) for c in ChannelName}

    def record(self, tenant: str, channel: ChannelName, values: dict[str, Any], source: Source,
               actor: str, *, add: Iterable[str] = (), remove: Iterable[str] = (),
               replace: Iterable[str] | None = None) -> None:
        """Record settings and list changes of one channel in one transaction."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._write("write the attested state"):
            self._executemany(
                f"INSERT INTO {self._SETTINGS} (tenant, channel, field, value, source, actor, "
                "at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, channel, field) DO "
                "UPDATE SET value = excluded.value, source = excluded.source, "
                "actor = excluded.actor, at = excluded.at",
                [(tenant, channel.value, k, json.dumps(v, ensure_ascii=False), source, actor,
                  now) for k, v in values.items()])
            if replace is not None:
                self._execute(f"DELETE FROM {self._MEMBERS} WHERE tenant = ? AND channel = ?",
                              (tenant, channel.value))
                add = replace
            self._executemany(
                f"INSERT INTO {self._MEMBERS} (tenant, channel, email, source, at) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (tenant, channel, email) DO UPDATE SET "
                "source = excluded.source, at = excluded.at",
                [(tenant, channel.value, e, source, now) for e in add])
            self._executemany(
                f"DELETE FROM {self._MEMBERS} WHERE tenant = ? AND channel = ? AND email = ?",
                [(tenant, channel.value, e) for e in remove])


class SqliteAttestedStore(SqliteSession, AttestedStore):
    """The attested state in its own SQLite file beside the journal."""

    _SETTINGS, _MEMBERS = "settings", "members"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
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
            raise StateError(f"cannot open the attested state {path}: {exc}") from exc


class PostgresAttestedStore(PostgresSession, AttestedStore):
    """The attested state in the shared PostgreSQL state (tables made by `lwr state migrate`)."""

    _SETTINGS, _MEMBERS = "attested_settings", "attested_members"


def open_attested(state_dir: Path, state_url: str | None) -> AttestedStore:
    """The attested state where the state store is: PostgreSQL when `state_url` names it."""
    if state_url:
        return PostgresAttestedStore(state_url)
    return SqliteAttestedStore(state_dir / FILE_NAME)

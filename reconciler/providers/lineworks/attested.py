"""Attested state: what lwr knows about a LINE WORKS tenant but cannot read through the API.

A small SQLite file beside the journal. Each value says where it came from: `attested` (an
admin confirmed it in the console) or `applied` (lwr's own API call succeeded).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import StateError
from reconciler.model import ChannelName

Source = Literal["attested", "applied"]
FILE_NAME = "attested.db"
#: The page's settings per channel, by the names of the desired-state file.
FIELDS = ("enabled", "all_members", "auto_grant_new_members", "restrict_file_transfer",
          "greeting_enabled", "greeting_message")
MEMBERS = "members"  # a pseudo-field: set once the list is known at all

_SCHEMA = (
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


class AttestedStore:
    """The attested-state file of any number of tenants (keyed by provider key)."""

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
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the attested state {path}: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    def load(self, tenant: str) -> dict[ChannelName, ChannelKnowledge]:
        """Everything known about `tenant`, per channel."""
        facts: dict[ChannelName, dict[str, Fact]] = {c: {} for c in ChannelName}
        members: dict[ChannelName, set[str]] = {c: set() for c in ChannelName}
        with self._errors("read"):
            rows = self._conn.execute(
                "SELECT channel, field, value, source, actor, at FROM settings WHERE tenant = ?",
                (tenant,)).fetchall()
            for channel, name, value, source, actor, at in rows:
                facts[ChannelName(channel)][name] = Fact(json.loads(value), source, actor, at)
            for channel, email in self._conn.execute(
                    "SELECT channel, email FROM members WHERE tenant = ?", (tenant,)):
                members[ChannelName(channel)].add(email)
        return {c: ChannelKnowledge(facts[c], frozenset(members[c])) for c in ChannelName}

    def record(self, tenant: str, channel: ChannelName, values: dict[str, Any], source: Source,
               actor: str, *, add: Iterable[str] = (), remove: Iterable[str] = (),
               replace: Iterable[str] | None = None) -> None:
        """Record settings and list changes of one channel in one transaction."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._errors("write"), self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO settings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(tenant, channel.value, k, json.dumps(v, ensure_ascii=False), source, actor,
                  now) for k, v in values.items()])
            if replace is not None:
                conn.execute("DELETE FROM members WHERE tenant = ? AND channel = ?",
                             (tenant, channel.value))
                add = replace
            conn.executemany("INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?)",
                             [(tenant, channel.value, e, source, now) for e in add])
            conn.executemany("DELETE FROM members WHERE tenant = ? AND channel = ? AND email = ?",
                             [(tenant, channel.value, e) for e in remove])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"cannot {doing} the attested state {self.path}: {exc}") from exc

"""Where lock, journal, audit log and attested state live: `--state URL` (env LWR_STATE).

- unset: `state.db` beside a `local:` tenant, else `.lwr/state.db` (SQLite, no set-up);
- `local:PATH`: that SQLite file;
- `postgresql://user@host/db[?schema=NAME]`: a PostgreSQL database shared by every runner
  (schema made by `lwr state migrate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.uris import redact, state_target

if TYPE_CHECKING:
    from reconciler.store.base import StateStore


@dataclass(frozen=True)
class StateLocation:
    """A resolved --state: an SQLite file (`path`) or a PostgreSQL URL (`url`)."""

    path: Path | None = None
    url: str | None = None

    @classmethod
    def resolve(cls, state_uri: str | None, tenant_uri: str) -> StateLocation:
        """Apply the defaults above (reconciler.uris.state_target); UsageError for a URI of
        no known kind."""
        path, url = state_target(state_uri, tenant_uri)
        return cls(path=path, url=url)

    @property
    def exists(self) -> bool:
        """False only for an SQLite store never created: nothing was applied through it.

        A database is always asked: its schema missing is an error worth showing.
        """
        return self.path is None or self.path.exists()

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else redact(self.url or "")

    def open(self, *, readonly: bool = False) -> StateStore:
        """Connect (PostgreSQL) or open, creating if needed (SQLite); `readonly`: for commands
        that only read, an SQLite store must exist and nothing is written or created."""
        if self.url is not None:
            from reconciler.store.postgres import PostgresStateStore

            return PostgresStateStore(self.url)
        from reconciler.store.sqlite import SqliteStateStore

        assert self.path is not None
        return SqliteStateStore(self.path, readonly=readonly)

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema; (version before, version after)."""
        if self.url is not None:
            from reconciler.store.postgres import migrate

            return migrate(self.url)
        from reconciler.store.sqlite import SqliteStateStore

        assert self.path is not None
        before = SqliteStateStore.file_version(self.path)
        with SqliteStateStore(self.path) as store:  # opening an SQLite store migrates it
            return before, store.schema_version()


def open_store(state_uri: str | None, tenant_uri: str) -> StateStore:
    """The state store for a tenant, per --state and its defaults."""
    return StateLocation.resolve(state_uri, tenant_uri).open()

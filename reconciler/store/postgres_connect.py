"""Connecting to the PostgreSQL state: the state URL taken apart, and one session to it.

The session is in autocommit mode (transactions are explicit) with TCP keepalives on both
sides, so that the server notices a runner that died with its host within about a minute,
and with it drops the runner's locks. Every driver failure becomes a StateError whose text
never shows the URL's password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.errors import StateError
from reconciler.i18n import N_, Said
from reconciler.uris import redact, scrub, split_postgres_url

if TYPE_CHECKING:
    import psycopg

DEFAULT_SCHEMA = "lwr"


@dataclass(frozen=True)
class PostgresTarget:
    """A state URL taken apart: what libpq connects to, and lwr's own `schema` parameter."""

    conninfo: str
    schema: str
    display: str  # the URL without its password, for messages

    def scrub(self, text: str) -> str:
        """A driver's message fit to print: libpq may quote a piece of the URL it rejects."""
        return scrub(text, self.conninfo)

    @classmethod
    def parse(cls, url: str) -> PostgresTarget:
        """Split `postgresql://user:pw@host:port/db?schema=NAME&sslmode=…` (reconciler.uris):
        UsageError for a URL that cannot be read unambiguously, StateError naming the rule for
        a bad schema name."""
        conninfo, schema = split_postgres_url(url)
        schema = DEFAULT_SCHEMA if schema is None else schema
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StateError(
                Said.of(
                    "state URL {url}: schema {schema!r} must be lower-case letters, digits "
                    "and _ (at most 63), not starting with a digit",
                    url=redact(url),
                    schema=schema,
                )
            )
        return cls(conninfo, schema, redact(url))


def connect(target: PostgresTarget) -> psycopg.Connection[Any]:
    """An autocommit session (transactions are explicit) whose death the server notices."""
    try:
        import psycopg
    except ImportError as exc:
        raise StateError(
            Said.of(
                "a postgresql:// state needs psycopg 3: "
                "pip install 'lineworks-reconciler[postgresql]'"
            )
        ) from exc
    try:
        conn = psycopg.connect(
            target.conninfo,
            autocommit=True,
            connect_timeout=10,
            application_name="lwr",
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        failed = N_("cannot connect to the state database {location}: {reason}")
        raise _state_error(exc, target, failed) from exc
    try:
        # The server side of the keepalives: a runner whose host vanished loses its session,
        # and so its lock, within about a minute instead of the kernel's two hours.
        for setting, value in (
            ("tcp_keepalives_idle", 30),
            ("tcp_keepalives_interval", 10),
            ("tcp_keepalives_count", 3),
        ):
            conn.execute(f"SET {setting} = {value}")
        conn.execute(f'SET search_path TO "{target.schema}"')
    except psycopg.Error as exc:
        conn.close()
        raise _state_error(exc, target, N_("state database {location}: {reason}")) from exc
    return conn


def raise_state_error(exc: BaseException, target: PostgresTarget, failed: str) -> None:
    """A driver's `exc` as StateError: `failed` is the message (a msgid with {location} and
    {reason}, e.g. "state database {location}: cannot migrate: {reason}"); others pass."""
    import psycopg

    if isinstance(exc, psycopg.Error):
        raise _state_error(exc, target, failed) from exc


def _state_error(exc: BaseException, target: PostgresTarget, failed: str) -> StateError:
    """`failed` (a msgid with {location} and {reason}) said of the driver's `exc`, secrets
    of the URL masked."""
    return StateError(
        Said.of(failed, location=target.display, reason=target.scrub(str(exc).strip()))
    )

"""The PostgreSQL state schema: its migrations, its version, and `lwr state migrate`.

Created and upgraded only by `lwr state migrate` (`migrate`), never by an apply: a runner
that finds the schema missing or older than it needs says so and stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.errors import StateError
from reconciler.i18n import N_, Said
from reconciler.store.base import GENESIS_HASH
from reconciler.store.postgres_connect import PostgresTarget, connect, raise_state_error
from reconciler.store.tables import RESULTS_V1, Types

if TYPE_CHECKING:
    import psycopg

#: Bumped with every entry of MIGRATIONS.
SCHEMA_VERSION = 4
#: Advisory lock key taken (per transaction) while migrating, so two migrations never overlap.
_MIGRATE_LOCK = 0x4C57_5253_0000_0001

_TYPES = Types("bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "bigint PRIMARY KEY", "text")

#: (version, statements): applied in order, each version once, in one transaction.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE locks (
        tenant_key text PRIMARY KEY,
        username text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        operation text NOT NULL,
        since text NOT NULL,
        token text NOT NULL,
        lock_key bigint NOT NULL,
        backend_pid integer NOT NULL)""",
            *_TYPES.journal(),
            _TYPES.audit("audit", RESULTS_V1),
            "CREATE INDEX audit_by_tenant ON audit (tenant_key, seq)",
            # The chain's head exists from the start: appenders lock it (FOR UPDATE) to take turns.
            """CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL)""",
            f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
            # Append-only by construction; the hash chain catches whoever drops these triggers.
            """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
            """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
            """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
            # What lwr knows of a lineworks: tenant but cannot read (store/attested.py).
            """CREATE TABLE attested_settings (
        tenant text NOT NULL, channel text NOT NULL, field text NOT NULL,
        value text NOT NULL, source text NOT NULL, actor text NOT NULL, at text NOT NULL,
        PRIMARY KEY (tenant, channel, field))""",
            """CREATE TABLE attested_members (
        tenant text NOT NULL, channel text NOT NULL, email text NOT NULL,
        source text NOT NULL, at text NOT NULL,
        PRIMARY KEY (tenant, channel, email))""",
        ),
    ),
    (
        2,
        (
            # Audit results may be `attested`: a manual step an admin confirmed doing in the
            # console.
            "ALTER TABLE audit DROP CONSTRAINT audit_result_check",
            """ALTER TABLE audit ADD CONSTRAINT audit_result_check
        CHECK (result IN ('applied', 'attested', 'recovered', 'failed'))""",
        ),
    ),
    (
        3,
        (
            # An entry's hash may be an HMAC with LWR_AUDIT_KEY (reconciler/audit.py); older entries
            # are plain sha256, their hashes unchanged. ALTER TABLE fires no row trigger.
            """ALTER TABLE audit ADD COLUMN hash_alg text NOT NULL DEFAULT 'sha256'
        CHECK (hash_alg IN ('sha256', 'hmac-sha256'))""",
        ),
    ),
    (
        4,
        (
            # The last apply's selection per tenant and channel (reconciler/selection.py), one
            # compressed document each. A new table: nothing older is touched.
            """CREATE TABLE selections (
        tenant_key text NOT NULL, channel text NOT NULL, document bytea NOT NULL,
        run_id text, at text NOT NULL,
        PRIMARY KEY (tenant_key, channel))""",
        ),
    ),
)


def migrate(url: str, up_to: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Create or upgrade the state schema at `url` (up to version `up_to`: older ones are for
    testing upgrades); returns (version before, version after).

    Idempotent, and safe to run from several runners at once: an advisory lock makes them take
    turns and each migration commits with its version row.
    """
    target = PostgresTarget.parse(url)
    conn = connect(target)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now(),
                lwr_version text NOT NULL)""")
            before = version_of(conn)
            refuse_newer(before, target)
            for version, statements in MIGRATIONS:
                if before < version <= up_to:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, lwr_version) VALUES (%s, %s)",
                        (version, __version__),
                    )
        return before, version_of(conn)
    except Exception as exc:
        raise_state_error(exc, target, N_("state database {location}: cannot migrate: {reason}"))
        raise
    finally:
        conn.close()


def version_of(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def refuse_newer(version: int, target: PostgresTarget) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            Said.of(
                "the state schema in {location} is version {version}, written by a newer lwr "
                "(this one knows up to {known}); upgrade lwr",
                location=target.display,
                version=version,
                known=SCHEMA_VERSION,
            )
        )

"""The local tenant's file: its SQLite schema, and opening, checking and creating it.

A file that is not an lwr tenant, is damaged, or comes from a newer lwr is refused before
anything writes to it; a new tenant appears in one rename, never half-made. The checks
shared with the SQLite state store (modes, read-only opening, -wal) are in
reconciler.sqlite_files.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from reconciler.errors import TenantError, UsageError
from reconciler.i18n import N_, Said
from reconciler.model import ChannelName
from reconciler.providers.local.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    TABLES,
    TABLES_V1,
    UPGRADES,
)
from reconciler.settings import SETTINGS
from reconciler.sqlite_files import (
    SIDECARS,
    FileStamp,
    Trouble,
    advised,
    connect_readonly,
    damage_advice,
    has_wal,
    make_private_dir,
    quick_check,
)
from reconciler.words import utc_now

DEFAULT_DOMAIN = "example.co.jp"
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a writer waits for another writer before giving up
#: The SQL column of each setting, by ChannelState attribute, read from the settings table
#: (`Setting.local_column`): a new console setting needs its row there and its column in
#: SCHEMA, nothing else here.
COLUMNS: dict[str, str] = {s.attr: s.local_column for s in SETTINGS}
#: Settings that are on/off switches (0/1 in SQL); the others are text.
SWITCHES = frozenset(s.attr for s in SETTINGS if s.on is not None)

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: What a tenant path that holds no SQLite database is told (empty, corrupted, another file).
_NOT_SQLITE = N_(
    "{path} is not an lwr tenant: not a SQLite database (empty, corrupted or another kind of "
    "file); the file was left untouched"
)
_HEADER_SIZE = 100
_DOMAIN = re.compile(r"[^@\s]+\.[^@\s]+")


def connect(
    path: Path, busy_timeout: float, *, readonly: bool
) -> tuple[sqlite3.Connection, FileStamp | None]:
    """A connection in autocommit mode (transactions are explicit); mode=rw never creates.

    `readonly`: one that writes and creates nothing (sqlite_files.connect_readonly), with
    the stamp to check after each read when SQLite cannot see writers.
    """
    stamp = None
    try:
        if readonly:
            conn, stamp = connect_readonly(path, busy_timeout)
        else:
            conn = sqlite3.connect(
                f"file:{quote(str(path))}?mode=rw",
                uri=True,
                isolation_level=None,
                timeout=busy_timeout,
            )
    except sqlite3.Error as exc:
        raise TenantError(_cannot("open", path, explain(exc, path))) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across application crashes in WAL mode; fsync only at checkpoints.
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        conn.close()
        raise TenantError(_cannot("open", path, explain(exc, path))) from exc
    return conn, stamp


def check_header(path: Path) -> str | None:
    """Reject non-SQLite, truncated and newer-version files from their header bytes alone,
    before SQLite opens them (opening a WAL file creates side files; a bad one must not).

    A main file shorter than its header says, with a -wal beside it, is what a kill during
    SQLite's checkpoint leaves (page 1 copied, later pages not yet): the -wal holds them.
    Then SQLite decides, after opening: the reason is returned for `verify` to check.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            header = fh.read(_HEADER_SIZE)
    except OSError as exc:
        raise TenantError(_cannot("read", path, str(exc.strerror))) from exc
    if not header.startswith(_SQLITE_MAGIC):
        raise TenantError(Said.of(_NOT_SQLITE, path=str(path)))
    if len(header) < _HEADER_SIZE:
        raise TenantError(_corrupted(path, Said.of("truncated SQLite header")))
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise TenantError(_corrupted(path, Said.of("invalid page size {size}", size=page_size)))
    check_version(path, int.from_bytes(header[60:64], "big", signed=True))
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is trustworthy only when "version-valid-for" matches the
    # change counter; then a shorter file means it was cut off.
    if pages and header[92:96] == header[24:28] and size < pages * page_size:
        why = Said.of(
            "truncated to {size} bytes, the database needs {needed}",
            size=size,
            needed=pages * page_size,
        )
        if has_wal(path):
            return why
        raise TenantError(_corrupted(path, why))
    return None


def _cannot(what: str, path: Path, why: str) -> Said:
    """`cannot open/read/create local tenant PATH: WHY`, each a whole message."""
    if what == "open":
        return Said.of("cannot open local tenant {path}: {reason}", path=str(path), reason=why)
    if what == "read":
        return Said.of("cannot read local tenant {path}: {reason}", path=str(path), reason=why)
    return Said.of("cannot create local tenant {path}: {reason}", path=str(path), reason=why)


def _corrupted(path: Path, why: str) -> Said:
    return Said.of(
        "{path} is corrupted: {why}; the file was left untouched; {advice}",
        path=str(path),
        why=why,
        advice=damage_advice(path),
    )


def check_version(path: Path, version: int) -> None:
    """Refuse a file of a newer lwr: this one cannot know what it would break."""
    if version > SCHEMA_VERSION:
        raise TenantError(
            Said.of(
                "{path} was written by a newer lwr (tenant schema version {version}; this lwr "
                "knows up to {known}); upgrade lwr. The file was left untouched",
                path=str(path),
                version=version,
                known=SCHEMA_VERSION,
            )
        )


def check_with_wal(path: Path, damaged: str, busy_timeout: float) -> None:
    """The header looks `damaged` but a -wal exists: SQLite reads both, and only a failed
    check of both makes the tenant damaged.

    Read-only, so that a failed check leaves the -wal alone: a writer's close would
    checkpoint and delete it, and the frames SQLite cannot use may still be salvaged.
    """
    problem = ""
    try:
        conn, _ = connect_readonly(path, busy_timeout)
    except sqlite3.Error as exc:
        problem = str(exc)
    else:
        with closing(conn):
            problem = quick_check(conn)
    if problem:
        raise TenantError(
            Said.of(
                "{path} is damaged: {damaged}, and SQLite cannot read it with its "
                "-wal either ({problem}); {advice}",
                path=str(path),
                damaged=damaged,
                problem=problem,
                advice=damage_advice(path),
            )
        )


def verify(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> int:
    """Check the schema before anything writes: only then switch the file to WAL, and
    upgrade a file of an older lwr in place. The file's schema version after that.

    Read-only, an older file is read as it is (it has no org chart yet).
    """
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        check_version(path, version)
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted((TABLES if version >= SCHEMA_VERSION else TABLES_V1) - names)
        if version < 1 or missing:
            raise TenantError(
                Said.of(
                    "{path} is a SQLite database but not an lwr tenant "
                    "(missing: {missing}); the file was left untouched",
                    path=str(path),
                    missing=", ".join(missing) or "schema version",
                )
            )
        if readonly:
            return version
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return upgrade(conn, path) if version < SCHEMA_VERSION else version
    except sqlite3.Error as exc:
        raise TenantError(_cannot("open", path, explain(exc, path))) from exc


def upgrade(conn: sqlite3.Connection, path: Path) -> int:
    """Bring a file of an older lwr to SCHEMA_VERSION in one transaction, keeping all it
    holds; another process may have done it first (the version is read under the lock)."""
    # Only outside a transaction can foreign keys be switched off, as rebuilding a table
    # that others reference needs (SQLite's documented ALTER TABLE procedure).
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in UPGRADES[number]:
                        conn.execute(statement)
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise TenantError(
                        Said.of(
                            "cannot upgrade local tenant {path}: it breaks its own references "
                            "(PRAGMA foreign_key_check); the file was left as it was",
                            path=str(path),
                        )
                    )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return SCHEMA_VERSION


def build(
    path: Path,
    domain: str,
    seed: Callable[[sqlite3.Connection, str], None] | None,
    *,
    overwrite: bool,
) -> None:
    """Write a complete tenant beside `path`, then move it into place in one rename.

    A crash mid-way leaves at most a temporary file, never a half-made tenant.
    """
    try:
        make_private_dir(path.parent)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise TenantError(_cannot("create", path, str(exc.strerror))) from exc
    tmp = Path(name)
    try:
        _write_new(tmp, domain.lower(), seed)  # domains are case-insensitive: kept lower-case
        _publish(tmp, path, overwrite=overwrite)
    except sqlite3.Error as exc:
        raise TenantError(_cannot("create", path, explain(exc, path))) from exc
    except OSError as exc:
        raise TenantError(_cannot("create", path, str(exc.strerror or exc))) from exc
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in SIDECARS)):
            leftover.unlink(missing_ok=True)


def _defaults(channel: ChannelName) -> list[bool | str | None]:
    """A new tenant's settings row of `channel`, in COLUMNS order: the console defaults, and
    NULL for a setting the channel does not have (lineworks has no greeting)."""
    return [s.default if channel in s.channels else None for s in SETTINGS]


def _write_new(
    tmp: Path, domain: str, seed: Callable[[sqlite3.Connection, str], None] | None
) -> None:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # A private file nobody else sees yet: no journal while loading, WAL from then on.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO meta (id, domain, created_at) VALUES (1, ?, ?)", (domain, now()))
        conn.executemany(
            f"INSERT INTO channels (name, {', '.join(COLUMNS.values())})"
            f" VALUES (?, {', '.join('?' * len(COLUMNS))})",
            [(channel.value, *_defaults(channel)) for channel in ChannelName],
        )
        if seed is not None:
            seed(conn, domain)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())


def _publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished file to `path`; without `overwrite`, never replace an existing one."""
    if not overwrite:
        try:
            os.link(tmp, path)  # atomic "create if absent", unlike exists() + rename
        except FileExistsError:
            raise TenantError(
                Said.of("a tenant already exists at {path}", path=str(path))
            ) from None
        return
    # The old file's WAL would be replayed onto the new one: drop it with the old file.
    for suffix in SIDECARS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)


#: What a failed open or write of the tenant's file says, by what SQLite reported.
_TROUBLE: dict[Trouble, str] = {
    "damaged": N_("the file is corrupted ({error}); {advice}"),
    "busy": N_("the tenant is busy: another process holds the write lock (try again)"),
    "readonly": N_("{error}: the command needs write access to {path} and its directory"),
}


def explain(exc: sqlite3.Error, path: Path) -> str:
    """Why SQLite failed on the tenant's file, with what to do when it can be said."""
    return advised(str(exc), path, _TROUBLE) or str(exc)


def now() -> str:
    """The current UTC time as the file stores it (seconds, `+00:00`)."""
    return utc_now("seconds")


def check_domain(domain: str) -> None:
    """Refuse what is not a domain name (before a tenant of it is made)."""
    if not _DOMAIN.fullmatch(domain):
        raise UsageError(Said.of("{domain!r} is not a domain (e.g. example.co.jp)", domain=domain))

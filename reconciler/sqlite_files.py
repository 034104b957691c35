"""lwr's SQLite files on disk: created owner-only, read without writing, damage explained.

Shared by the local tenant (providers/local/fileformat.py) and the SQLite state store
(store/sqlite.py). Both hold personal data (member emails, actors), so every file they
create is 0600 from its first byte, and SQLite gives the -wal and -shm it creates the mode
of the database file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import quote

from reconciler.i18n import N_, Said, listing

T = TypeVar("T")

#: Files SQLite keeps beside a database: the write-ahead log, its shared-memory index, and
#: the rollback journal of a database not (yet) in WAL mode.
SIDECARS = ("-wal", "-shm", "-journal")
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def sidecar(path: Path, suffix: str) -> Path:
    """`path` with SQLite's suffix appended (tenant.db → tenant.db-wal)."""
    return path.with_name(path.name + suffix)


def has_wal(path: Path) -> bool:
    """Whether a non-empty -wal lies beside `path`: then it may hold committed changes that are
    not in the main file yet (a writer has it open, or was killed before its checkpoint)."""
    try:
        return sidecar(path, "-wal").stat().st_size > 0
    except OSError:
        return False


def create_private(path: Path) -> None:
    """Create `path` empty and owner-only, unless it exists already (then leave it alone).

    SQLite would create it 0644 (less the umask); created here first, it and the -wal/-shm
    SQLite makes after it are 0600 whatever the umask.
    """
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE))


def make_private_dir(path: Path) -> None:
    """Create the directory `path` (and missing parents) owner-only; an existing one is kept."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


@dataclass(frozen=True)
class FileStamp:
    """What changes when any process writes a file: compared before and after a read."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        """The file's stamp now; None when it is gone."""
        try:
            info = path.stat()
        except OSError:
            return None
        return cls(info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def changed_since(stamp: FileStamp | None, path: Path) -> bool:
    """Whether the file at `path` moved since `stamp` was taken (None: SQLite's own locks
    see writers, so nothing to prove)."""
    return stamp is not None and FileStamp.of(path) != stamp


def connect_readonly(path: Path, timeout: float) -> tuple[sqlite3.Connection, FileStamp | None]:
    """A connection for read-only commands that writes and creates nothing, in any directory.

    With a -wal beside the file, its committed changes count: SQLite's `mode=ro` reads them
    through the existing -shm (SQLite 3.22+ can do so even when both are read-only to us).
    Without one, every committed change is in the main file; `mode=ro` would still create a
    -wal and -shm (and fails where the directory is read-only), so the file is opened
    `immutable` instead: no locks and no side files. A writer that starts meanwhile goes
    unseen by SQLite, so the stamp is returned: the caller checks it after each read
    (`FileStamp.of(path) == stamp`), and a changed file means the read must be done again.
    Returns (connection, stamp); the stamp is None in `mode=ro`, where SQLite's locks apply.
    """
    uri = f"file:{quote(str(path))}?mode=ro"
    stamp = None
    if not sidecar(path, "-wal").exists():
        stamp = FileStamp.of(path)
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
    return conn, stamp


@dataclass(frozen=True)
class RereadPolicy:
    """How a lock-free read (connect_readonly's `immutable` mode) answers a writer.

    Such a read cannot see a writer, so it proves afterwards that the file's stamp did not
    move; when it did, the read is done again on a fresh connection, at most `attempts` reads
    in all. Bounded, because a writer that keeps writing (a long apply) would otherwise keep
    a reader reading forever; then the caller's error says so, and what to do.
    """

    attempts: int

    def read(
        self,
        read: Callable[[], T],
        *,
        changed: Callable[[], bool],
        reopen: Callable[[], None],
        gave_up: Callable[[int], Exception],
    ) -> T:
        """`read()` until `changed()` says no writer moved the file meanwhile; `reopen()`
        before each new try. An error of a read whose file changed is not damage: it is
        read again too. Raises `gave_up(attempts)` once every try saw a writer."""
        for attempt in range(self.attempts):
            if attempt:
                reopen()
            try:
                value = read()
            except Exception:
                if changed():
                    continue
                raise
            if not changed():
                return value
        raise gave_up(self.attempts)


#: The one policy of every lock-free read: the local tenant's and the attested state's.
REREAD = RereadPolicy(attempts=3)


#: What a lock-free read reads: the local tenant's file or the attested state's.
ReadKind = Literal["local tenant", "the attested state"]
#: The message of a lock-free read that saw a writer every time, per file it reads: a whole
#: sentence each, so that the file's kind is translated with it.
_CHANGED_WHILE_READ: dict[ReadKind, str] = {
    "local tenant": N_(
        "local tenant {path} was changed by another process each of the {attempts} times it "
        "was read; run the command again once it is not being written (an apply may be running)"
    ),
    "the attested state": N_(
        "the attested state {path} was changed by another process each of the {attempts} "
        "times it was read; run the command again once it is not being written (an apply may "
        "be running)"
    ),
}


def changed_while_read(what: ReadKind, path: Path, attempts: int) -> Said:
    """The message of a read that saw a writer every time (RereadPolicy gave up); `what` is
    the kind of file read."""
    return Said.of(_CHANGED_WHILE_READ[what], path=str(path), attempts=attempts)


def damage_advice(path: Path) -> Said:
    """What is safe to do with a damaged database at `path`, and what would lose data."""
    kept = [str(sidecar(path, s)) for s in SIDECARS if sidecar(path, s).exists()]
    keep = listing(kept)  # the files listed the reader's way
    if has_wal(path):
        return Said.of(
            "do not delete {wal}: it holds changes not yet copied into "
            "the main file; copy {path} together with {keep} somewhere safe, then "
            "restore from a backup (`sqlite3 FILE .recover` may salvage the rest)",
            wal=str(sidecar(path, "-wal")),
            path=str(path),
            keep=keep,
        )
    if kept:
        return Said.of(
            "copy {path} together with {keep} somewhere safe, then restore it from a backup "
            "(`sqlite3 FILE .recover` may salvage what is left)",
            path=str(path),
            keep=keep,
        )
    return Said.of(
        "copy {path} somewhere safe, then restore it from a backup "
        "(`sqlite3 FILE .recover` may salvage what is left)",
        path=str(path),
    )


#: What SQLite's error text says went wrong with a file, as far as the admin can act on it.
Trouble = Literal["damaged", "busy", "readonly"]
#: The words of SQLite's errors that tell each trouble, in the order they are looked for.
_SIGNS: tuple[tuple[Trouble, tuple[str, ...]], ...] = (
    ("damaged", ("not a database", "malformed", "unsupported file format")),
    ("busy", ("locked", "busy")),
    ("readonly", ("readonly",)),
)


def advised(error: str, path: Path, wording: dict[Trouble, str]) -> Said | None:
    """`error` (SQLite's, or ours quoting it) with what to do, in the words `wording` gives
    for its kind of trouble (msgids with `{error}`, `{path}`, `{advice}`: the damage advice);
    None when SQLite's text names no trouble `wording` has words for."""
    text = str(error)
    for trouble, signs in _SIGNS:
        if trouble in wording and any(sign in text for sign in signs):
            advice = damage_advice(path) if trouble == "damaged" else ""
            return Said.of(wording[trouble], error=error, path=str(path), advice=advice)
    return None


def quick_check(conn: sqlite3.Connection) -> str:
    """'' when SQLite finds the open database intact, else its first complaint."""
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    first = str(rows[0][0]) if rows else "no result"
    return "" if first == "ok" else first


def tables_of(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Each table of the open database with its column names."""
    names = [
        n
        for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        name: tuple(c for (c,) in conn.execute("SELECT name FROM pragma_table_info(?)", (name,)))
        for name in names
    }


def schema_gaps(
    expected: dict[str, tuple[str, ...]], have: dict[str, tuple[str, ...]]
) -> list[Said]:
    """What of `expected` is missing from `have`, in words (each said in any language);
    tables lwr does not know are fine."""
    gaps = []
    for table, columns in expected.items():
        if table not in have:
            gaps.append(Said.of("table {table} is missing", table=table))
            continue
        lost = [c for c in columns if c not in have[table]]
        if lost:
            gaps.append(
                Said.of(
                    "table {table} lacks column(s) {columns}", table=table, columns=", ".join(lost)
                )
            )
    return gaps

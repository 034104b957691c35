"""Files the user names on the command line: outputs written safely, inputs opened safely.

Outputs (`plan --out`, `export --out`, `--markdown-dir`) are written atomically: a temporary
file in the target's own directory, fsync, rename over the target, so a reader sees the old
file or the new one, never half of either, and a failed write leaves the old file whole. No
output may replace the tenant's file, the state store's files or their SQLite siblings
(`-wal`, `-shm`, `-journal`, the lock files): a plan saved onto `state.db` would destroy the
journal and audit log. A character device (`/dev/null`, a terminal, `/dev/full`) is written
directly, as there is no file to keep whole; FIFOs, sockets, block devices and directories
are refused, as writing to them blocks or makes no sense.

Inputs (desired files, saved plans, policy files) are opened without blocking and checked
with fstat on the open descriptor (no gap between the check and the read): anything but a
regular file is refused at once, where a FIFO with no writer would otherwise hang forever.

Every OSError becomes a one-line error naming the path and the operating system's reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reconciler.errors import FileError
from reconciler.i18n import Said

#: What SQLite keeps beside a database file, which is as much the database as the file is.
SQLITE_SIBLINGS = ("", "-wal", "-shm", "-journal")
#: How every refusal of a FIFO, device or directory ends.
NOT_REGULAR = "not a regular file"


def kind_of(mode: int) -> str:
    """What a non-regular file is, for messages ("a FIFO (named pipe)")."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISCHR(mode):
        return "a character device"
    return "not a regular file"


def reason(error: OSError) -> str:
    """The operating system's words for an error ("No space left on device")."""
    return error.strerror or str(error)


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Protected:
    """Files no output may replace: each with what it is ("the tenant's file")."""

    files: tuple[tuple[Path, str], ...] = ()
    folders: tuple[tuple[Path, str], ...] = ()  # everything inside them

    @classmethod
    def of(
        cls, databases: Iterable[tuple[Path, str]], folders: Iterable[tuple[Path, str]] = ()
    ) -> Protected:
        """Each SQLite database with its siblings, each folder with its contents; resolved."""
        files = tuple(
            (_resolved(Path(f"{db}{suffix}")), what)
            for db, what in databases
            for suffix in SQLITE_SIBLINGS
        )
        return cls(files, tuple((_resolved(folder), what) for folder, what in folders))

    def owner_of(self, target: Path) -> str | None:
        """What `target` (resolved, symlinks followed) is, when it is one of ours."""
        for path, what in self.files:
            if target == path or _same_file(target, path):
                return what
        for folder, what in self.folders:
            if target.is_relative_to(folder):
                return what
        return None


def write_output(path: str | os.PathLike[str], text: str, protected: Protected) -> None:
    """Write `text` (UTF-8) to the user-named `path`, atomically; FileError says why not."""
    shown = os.fspath(path)
    target = _resolved(Path(path))
    owner = protected.owner_of(target)
    if owner is not None:
        raise FileError(
            Said.of(
                "refusing to write {path}: it is {owner}; choose another file",
                path=shown,
                owner=owner,
            )
        )
    data = text.encode("utf-8")
    try:
        # The path as given, as the kernel follows it: /dev/stdout is then the pipe or
        # terminal it stands for, where resolving it by name gives no usable path.
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise _unwritable(shown, reason(e)) from e
    if mode is not None and stat.S_ISCHR(mode):
        _write_device(Path(path), data, shown)
    elif mode is not None and not stat.S_ISREG(mode):
        raise _unwritable(shown, f"it is {kind_of(mode)}, {NOT_REGULAR}")
    else:
        _write_atomically(target, data, shown, mode)


def _write_atomically(target: Path, data: bytes, shown: str, mode: int | None) -> None:
    folder = target.parent
    if not folder.is_dir():
        where = os.path.dirname(shown) or str(folder)
        if folder.exists():
            said = Said.of(
                "cannot write {path}: directory {where} is not a directory", path=shown, where=where
            )
        else:
            said = Said.of(
                "cannot write {path}: directory {where} does not exist", path=shown, where=where
            )
        raise FileError(said)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise _unwritable(shown, reason(e)) from e
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is not None:  # keep who may read an existing file; new ones are 0600
                os.fchmod(out.fileno(), stat.S_IMODE(mode))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException as e:  # Ctrl-C or SIGTERM mid-write too: no temporary file left
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise _unwritable(shown, reason(e)) from e
        raise
    _sync_folder(folder)


def _write_device(target: Path, data: bytes, shown: str) -> None:
    """A terminal or /dev/null: nothing to keep whole, so write straight to it."""
    try:
        # O_NONBLOCK only to open: a FIFO swapped in since the stat fails (ENXIO), not hangs.
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as e:
        raise _unwritable(shown, reason(e)) from e


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; a file system that cannot sync folders is no reason to fail."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_parts(directory: str | os.PathLike[str], parts: list[str], protected: Protected) -> Path:
    """DIR/part-1.md … part-N.md, each atomically; stale higher-numbered parts then removed."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileError(
            Said.of("cannot write to {path}: {reason}", path=os.fspath(directory), reason=reason(e))
        ) from e
    for i, part in enumerate(parts, 1):
        write_output(folder / f"part-{i}.md", part, protected)
    for stale in _numbered_parts(folder):
        if int(stale.stem.removeprefix("part-")) > len(parts):
            try:
                stale.unlink()
            except OSError as e:
                raise FileError(
                    Said.of("cannot remove {path}: {reason}", path=str(stale), reason=reason(e))
                ) from e
    return folder


def _numbered_parts(folder: Path) -> Iterator[Path]:
    for path in folder.glob("part-*.md"):
        if path.stem.removeprefix("part-").isdigit():
            yield path


def _resolved(path: Path) -> Path:
    """Absolute, `..` and symlinks resolved as far as they exist (a loop: as written)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names (a hard link); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --------------------------------------------------------------------------- inputs


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The user-named file at `path`, opened to read; FileError unless it is a regular file.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; fstat on
    the open descriptor then decides, so the file checked is the file read.
    """
    shown = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _unreadable(shown, _open_failure(path, e)) from e
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise _unreadable(shown, reason(e)) from e
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _unreadable(shown, f"it is {kind_of(mode)}, {NOT_REGULAR}")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        yield f


def read_input(path: str | os.PathLike[str]) -> bytes:
    """All bytes of the user-named regular file at `path` (see `open_input`)."""
    with open_input(path) as f:
        try:
            return f.read()
        except OSError as e:
            raise _unreadable(os.fspath(path), reason(e)) from e


def _unreadable(shown: str, why: str) -> FileError:
    return FileError(Said.of("cannot read {path}: {reason}", path=shown, reason=why), why)


def _unwritable(shown: str, why: str) -> FileError:
    return FileError(Said.of("cannot write {path}: {reason}", path=shown, reason=why))


def _open_failure(path: str | os.PathLike[str], error: OSError) -> str:
    """Why open failed; a socket (ENXIO on open) is named as what it is."""
    if error.errno == errno.ENXIO:
        with contextlib.suppress(OSError):
            return f"it is {kind_of(os.stat(path).st_mode)}, {NOT_REGULAR}"
    return reason(error)

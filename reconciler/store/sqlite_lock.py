"""The SQLite state store's tenant lock: a row naming the holder, proven by a kernel lock.

The row (table `locks`) says who holds a tenant; a flock on a per-tenant file beside the
store proves whether they still do, so a lock left by a dead process of this host is taken
over, and any other holder is refused with a message naming it and the way out.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.errors import LockHeld, StateError
from reconciler.i18n import N_, Said
from reconciler.sqlite_files import (
    PRIVATE_FILE,
    make_private_dir,
)
from reconciler.store.base import LockHolder, held_message
from reconciler.store.sql import SqlSession


def _holder(row: tuple[Any, ...]) -> LockHolder:
    return LockHolder.from_row(row)


def lock_held_message(holder: LockHolder, *, alive: bool | None = None) -> Said:
    """The LockHeld text: who holds the tenant, and whether `lwr unlock` is the way out.

    `alive`: what the tenant's lock file says (True: a live process holds it; False: nobody
    does); None when it cannot tell, and the holder's pid decides alone.
    """
    fields = {"tenant": holder.tenant_key, "holder": holder.describe(), "pid": holder.pid}
    if alive is False and holder.host == socket.gethostname() and not holder.stale:
        return Said.of(
            "tenant {tenant} is locked by {holder}; process {pid} exists but does not hold "
            "the tenant's lock file, so it is not that apply (its pid was reused): "
            "`lwr unlock` clears the lock",
            **fields,
        )
    if holder.stale and alive is not True:
        return Said.of(
            "tenant {tenant} is locked by {holder}; process {pid} is no longer running on "
            "this host, so the lock is stale: check the tenant with `lwr plan`, then "
            "`lwr unlock` clears it",
            **fields,
        )
    return held_message(
        holder,
        N_(
            "tenant {tenant} is locked by {holder}; wait for it to finish and try again (if "
            "that run died with its host, `lwr unlock` clears the lock)"
        ),
    )


def _lock_cleared_message(tenant_key: str) -> Said:
    return Said.of(
        "tenant {tenant} is locked by a running lwr process on this host (its lock record was "
        "cleared with `lwr unlock` while it ran, or it is just taking or releasing the lock); "
        "wait for it to finish and try again",
        tenant=tenant_key,
    )


class LockFile:
    """A kernel-held lock (flock) on a per-tenant file beside the store, held with the lock row.

    The row says who holds a tenant; the lock file proves whether they still do. The kernel
    drops a flock when its process dies, whatever pid namespace (container) it ran in and
    however its pid is reused later, so a row whose holder ran on this host and whose lock
    file is free was left by a dead process and may be taken over. Taken and released only
    inside the store's write transaction, so other lockers never see the two disagree.
    `state`: "held" (ours now), "busy" (a live process holds it), "unavailable" (no flock
    here: then nothing is taken over automatically).
    """

    def __init__(self, fd: int | None, state: str) -> None:
        self._fd, self.state = fd, state

    @classmethod
    def take(cls, path: Path, *, wait: bool = False) -> LockFile:
        """Try once, without waiting; with `wait`, block until no other process holds it."""
        if sys.platform == "win32":
            return cls(None, "unavailable")
        import fcntl

        try:
            make_private_dir(path.parent)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except OSError:
            return cls(None, "unavailable")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return cls(None, "busy")
        except OSError:  # e.g. ENOLCK on a network file system
            os.close(fd)
            return cls(None, "unavailable")
        return cls(fd, "held")

    def release(self) -> None:
        """Drop the flock (closing its descriptor does); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SqliteLocking(SqlSession):
    """The lock methods of SqliteStateStore, on the store's file `path` and connection."""

    path: Path

    @contextmanager
    def lock(self, tenant_key: str, operation: str) -> Iterator[LockHolder]:
        """Hold the tenant's lock for the `with` block; raise LockHeld naming the holder.

        A lock left by a dead process of this host (its lock file free, its pid gone) is
        taken over: the yielded holder's `replaced` names it. Released on any exit,
        KeyboardInterrupt included; only our own lock row is removed.
        """
        holder = LockHolder.of_this_process(tenant_key, operation)
        token = secrets.token_hex(16)
        holder, lock_file = self._acquire(holder, token)
        try:
            yield holder
        except BaseException:
            # What stopped the run is the error to show. On a full disk deleting our row
            # fails too; the row it leaves is provably stale once we exit (our lock file is
            # free, our pid gone), so the next apply takes it over.
            with suppress(StateError):
                self._release(tenant_key, token, lock_file)
            raise
        self._release(tenant_key, token, lock_file)

    def _release(self, tenant_key: str, token: str, lock_file: LockFile) -> None:
        """Delete our lock row and drop the lock file, the latter whatever happens."""
        try:
            with self._write(N_("state store {location}: cannot release the lock: {reason}")):
                self._conn.execute(
                    "DELETE FROM locks WHERE tenant_key = ? AND token = ?", (tenant_key, token)
                )
                # Before COMMIT: a locker waiting on our transaction sees both gone.
                lock_file.release()
        finally:
            lock_file.release()

    @property
    def _lock_dir(self) -> Path:
        return self.path.parent / f"{self.path.name}.locks"

    def _lock_file(self, tenant_key: str) -> Path:
        name = hashlib.sha256(tenant_key.encode("utf-8")).hexdigest()[:32]
        return self._lock_dir / f"{name}.lock"

    def _acquire(self, holder: LockHolder, token: str) -> tuple[LockHolder, LockFile]:
        """Insert our row, or take over a provably stale one, in one write transaction."""
        lock_file = LockFile(None, "unavailable")
        try:
            with self._write(N_("state store {location}: cannot take the lock: {reason}")):
                lock_file = LockFile.take(self._lock_file(holder.tenant_key))
                row = self._conn.execute(
                    "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                    "WHERE tenant_key = ?",
                    (holder.tenant_key,),
                ).fetchone()
                current = _holder(row) if row else None
                if lock_file.state == "busy":
                    raise LockHeld(
                        lock_held_message(current, alive=True)
                        if current
                        else _lock_cleared_message(holder.tenant_key)
                    )
                if current is not None:
                    if not (lock_file.state == "held" and current.stale):
                        alive = None if lock_file.state == "unavailable" else False
                        raise LockHeld(lock_held_message(current, alive=alive))
                    self._conn.execute(
                        "DELETE FROM locks WHERE tenant_key = ?", (holder.tenant_key,)
                    )
                    holder = replace(holder, replaced=current)
                self._conn.execute(
                    "INSERT INTO locks (tenant_key, user, host, pid, operation, since, token) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*holder.values(), token),
                )
        except BaseException:
            lock_file.release()  # also when COMMIT itself failed
            raise
        return holder, lock_file

    def list_locks(self) -> list[LockHolder]:
        """Every lock currently held, stale or not."""
        with self._errors(N_("state store {location}: cannot list locks: {reason}")):
            rows = self._conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "ORDER BY tenant_key"
            ).fetchall()
        return [_holder(row) for row in rows]

    def unlock(self, tenant_key: str) -> LockHolder | None:
        """Remove the tenant's lock whoever holds it; return the holder removed, if any."""
        with self._write(N_("state store {location}: cannot remove the lock: {reason}")):
            row = self._conn.execute(
                "SELECT tenant_key, user, host, pid, operation, since FROM locks "
                "WHERE tenant_key = ?",
                (tenant_key,),
            ).fetchone()
            self._conn.execute("DELETE FROM locks WHERE tenant_key = ?", (tenant_key,))
        return _holder(row) if row else None

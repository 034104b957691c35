"""Harness for the crash and concurrency tests: real `lwr` processes on real SQLite files,
held at chosen points from outside, inspected, and killed.

Nothing in `reconciler` knows about it. The test reaches exact points of an apply the way a
second program on the same machine could:

* a **gate** holds one database's write lock (as a concurrent writer would). The apply
  runs until its next write to that database and waits there (SQLite's busy wait), so a
  gate on the tenant freezes it *after* it journaled a batch `started` and *before* the
  tenant write; a gate on the state store freezes it after the tenant committed and
  before the journal says `done`. Alternating the two gates moves it one write at a time.
* **freezing** (SIGSTOP) stops it anywhere, e.g. inside an open write transaction, which a
  probe (`BEGIN IMMEDIATE` with no wait) detects; SIGKILL then lands exactly there.
* the **oracle** reads the tenant and the state store with plain SQL, not with lwr's code.

The busy wait counts its own sleeps, not wall time, so a gate held for a few hundred
milliseconds never makes the apply give up (tenant: 5 s, store: 10 s of sleeps).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.providers.local import (
    BATCH_SIZE,
    DEFAULT_DOMAIN,
    demo_directory,
    demo_line_list,
)
from reconciler.words import plural

LWR = str(Path(sys.executable).parent / "lwr")
DOMAIN = DEFAULT_DOMAIN
GREETING = "友だち追加ありがとうございます。営業時間は 9:00〜18:00（JST）です。"
BATCH = BATCH_SIZE  # the executor's batch of member changes on a local tenant
POLL = 0.001


def stress() -> bool:
    """`make stress` (LWR_STRESS=1): full-size scenarios instead of the reduced ones."""
    return os.environ.get("LWR_STRESS", "") not in ("", "0")


#: Scenarios whose guarantee a `make test` scenario already covers in its reduced form.
stress_only = pytest.mark.skipif(not stress(), reason="make stress only (LWR_STRESS=1)")


def rng(name: str) -> random.Random:
    """A reproducible random source per test: LWR_STRESS_SEED (default 6) + the test name."""
    return random.Random(f"{os.environ.get('LWR_STRESS_SEED', '6')}:{name}")


# --------------------------------------------------------------------------- the scenario


@dataclass(frozen=True)
class Scenario:
    """A demo company and a desired file whose plan has exactly `size` changes.

    Every phase is there: turn lineworks on, restrict LINE file transfer, remove members
    from LINE, add members to both lists, set the greeting, auto-grant on lineworks.
    """

    size: int

    @property
    def members(self) -> int:
        return self.size + self.size // 5

    @property
    def removals(self) -> int:
        return self.size // 50

    @property
    def line_adds(self) -> int:
        return self.size * 6 // 10

    @property
    def lineworks_adds(self) -> int:
        return self.size - 4 - self.removals - self.line_adds

    @property
    def batch_count(self) -> int:
        """Batches of the plan: one per channel-level change, member changes by 500."""
        adds = self.line_adds + self.lineworks_adds
        return 4 + -(-self.removals // BATCH) + -(-adds // BATCH)

    def directory(self) -> list[str]:
        return demo_directory(self.members, DOMAIN)

    def initial_line(self) -> list[str]:
        """What `lwr tenant init --demo` lists on LINE: alice, bob, carol and every tenth."""
        return demo_line_list(self.members, DOMAIN)

    def desired_line(self) -> list[str]:
        listed = self.initial_line()
        kept = listed[self.removals :]
        unlisted = [m for m in self.directory() if m not in set(listed)]
        return kept + unlisted[: self.line_adds]

    def desired_lineworks(self) -> list[str]:
        return self.directory()[-self.lineworks_adds :]

    def desired_yaml(self) -> str:
        lines = [
            "version: 1",
            f"tenant: {DOMAIN}",
            "external_messaging:",
            "  line:",
            "    enabled: true",
            "    restrict_file_transfer: true",
            "    greeting:",
            "      enabled: true",
            f"      message: {GREETING}",
            "    members:",
            "      policy: exact",
            "      include:",
        ]
        lines += [f"        - {m}" for m in self.desired_line()]
        lines += [
            "  lineworks:",
            "    enabled: true",
            "    auto_grant_new_members: true",
            "    members:",
            "      policy: additive",
            "      include:",
        ]
        lines += [f"        - {m}" for m in self.desired_lineworks()]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- raw SQL oracle


@contextmanager
def connect(db: Path, *, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A plain connection that never creates the file."""
    with closing(
        sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=timeout, isolation_level=None)
    ) as conn:
        yield conn


@dataclass(frozen=True)
class TenantFacts:
    """The tenant as stored: channel switches and connected-members lists."""

    channels: dict[str, dict[str, Any]]
    lists: dict[str, frozenset[str]]


def tenant_facts(db: Path) -> TenantFacts:
    with connect(db) as conn:
        conn.execute("BEGIN")  # one snapshot
        channels = {
            row[0]: {
                "enabled": bool(row[1]),
                "all_members": bool(row[2]),
                "auto_grant": bool(row[3]),
                "restrict": bool(row[4]),
                "greeting_enabled": row[5],
                "greeting_message": row[6],
            }
            for row in conn.execute(
                "SELECT name, enabled, all_members, auto_grant, restrict_file_transfer,"
                " greeting_enabled, greeting_message FROM channels"
            )
        }
        lists: dict[str, set[str]] = {"line": set(), "lineworks": set()}
        for channel, email in conn.execute("SELECT channel, email FROM connected"):
            lists[channel].add(email)
        conn.execute("COMMIT")
    return TenantFacts(channels, {k: frozenset(v) for k, v in lists.items()})


def holds(change: dict[str, Any], facts: TenantFacts) -> bool:
    """Whether the tenant has what `change` (plan JSON) sets; written apart from lwr's own."""
    ch = facts.channels[change["channel"]]
    members = facts.lists[change["channel"]]
    match change["action"]:
        case "enable_channel":
            return bool(ch["enabled"])
        case "set_file_restriction":
            return ch["restrict"] is change["after"]
        case "set_auto_grant":
            return ch["auto_grant"] is change["after"]
        case "remove_member":
            return change["target"] not in members
        case "add_member":
            return change["target"] in members
        case "set_greeting":
            after = change["after"]
            return all(ch[f"greeting_{k}"] == v for k, v in after.items())
    raise AssertionError(f"the scenario has no {change['action']}")


def holds_one(change: dict[str, Any], tenant_db: Path) -> bool:
    """`holds` for one change with one small query: cheap enough to poll every millisecond."""
    with connect(tenant_db) as conn:
        if change["action"] in ("add_member", "remove_member"):
            listed = (
                conn.execute(
                    "SELECT 1 FROM connected WHERE channel = ? AND email = ?",
                    (change["channel"], change["target"]),
                ).fetchone()
                is not None
            )
            return listed is (change["action"] == "add_member")
        row = conn.execute(
            "SELECT enabled, all_members, auto_grant, restrict_file_transfer, greeting_enabled,"
            " greeting_message FROM channels WHERE name = ?",
            (change["channel"],),
        ).fetchone()
    facts = TenantFacts(
        {
            change["channel"]: {
                "enabled": bool(row[0]),
                "all_members": bool(row[1]),
                "auto_grant": bool(row[2]),
                "restrict": bool(row[3]),
                "greeting_enabled": row[4],
                "greeting_message": row[5],
            }
        },
        {change["channel"]: frozenset()},
    )
    return holds(change, facts)


def started_ids(state_db: Path) -> list[str]:
    """Changes of the latest run journaled `started` and not settled (at most a batch)."""
    with connect(state_db) as conn:
        return [
            cid
            for (cid,) in conn.execute(
                "SELECT change_id FROM entries WHERE state = 'started' AND run_id = "
                "(SELECT run_id FROM runs ORDER BY seq DESC LIMIT 1)"
            )
        ]


def applied_ids(plan: Sequence[dict[str, Any]], tenant_db: Path) -> set[str]:
    facts = tenant_facts(tenant_db)
    return {c["id"] for c in plan if holds(c, facts)}


@dataclass
class Journal:
    """The state store as stored: runs, journal entries, audit rows, lock rows."""

    runs: list[tuple[str, str]]  # (run_id, status), oldest first
    entries: dict[str, dict[str, str]]  # run_id -> change_id -> state
    audit: list[tuple[str, str, str]]  # (run_id, change_id, result)
    locks: list[tuple[str, int]]  # (host, pid)

    def states(self, change_id: str) -> list[str]:
        return [e[change_id] for e in self.entries.values() if change_id in e]

    @property
    def latest(self) -> dict[str, str]:
        return self.entries.get(self.runs[-1][0], {}) if self.runs else {}


def journal(state_db: Path) -> Journal:
    with connect(state_db) as conn:
        conn.execute("BEGIN")
        runs = list(conn.execute("SELECT run_id, status FROM runs ORDER BY seq"))
        entries: dict[str, dict[str, str]] = {run_id: {} for run_id, _ in runs}
        for run_id, change_id, state in conn.execute(
            "SELECT run_id, change_id, state FROM entries ORDER BY seq"
        ):
            entries[run_id][change_id] = state
        audit = list(conn.execute("SELECT run_id, change_id, result FROM audit ORDER BY seq"))
        locks = list(conn.execute("SELECT host, pid FROM locks"))
        conn.execute("COMMIT")
    return Journal(runs, entries, audit, locks)


def entry_count(state_db: Path, state: str | None = None) -> int:
    """Journal entries of the latest run (cheap: polled every millisecond)."""
    where = " AND state = ?" if state else ""
    params: tuple[str, ...] = (state,) if state else ()
    with connect(state_db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM entries WHERE run_id = (SELECT run_id FROM runs ORDER BY seq "
            f"DESC LIMIT 1){where}",
            params,
        ).fetchone()
    return int(row[0])


def lock_rows(state_db: Path) -> list[tuple[str, int]]:
    with connect(state_db) as conn:
        return list(conn.execute("SELECT host, pid FROM locks"))


def run_count(state_db: Path) -> int:
    with connect(state_db) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def write_locked(db: Path) -> bool:
    """Whether some connection holds `db`'s write lock right now (probe without waiting)."""
    with connect(db, timeout=0) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                return True
            raise
        conn.execute("ROLLBACK")
        return False


class Gate:
    """Holds a database's write lock, as a concurrent writer would, until released."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None

    def try_close(self) -> bool:
        """Take the write lock if nobody holds it; True when taken (or already ours)."""
        if self._conn is not None:
            return True
        conn = sqlite3.connect(f"file:{self.db}?mode=rw", uri=True, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            conn.close()
            return False
        self._conn = conn
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Take the write lock, retrying while the apply holds it (it commits in ms)."""
        deadline = time.monotonic() + timeout
        while not self.try_close():
            if time.monotonic() > deadline:
                raise AssertionError(f"could not take the write lock of {self.db}")
            time.sleep(POLL)

    def open(self) -> None:
        """Release the write lock: the apply waiting on it goes on."""
        if self._conn is not None:
            self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None

    def commit_then_open(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Write as the concurrent writer holding the lock (an HR sync, an admin in the
        console), commit, and so release: the apply waiting on it sees the write."""
        assert self._conn is not None, "the gate is open"
        for sql, params in statements:
            self._conn.execute(sql, params)
        self._conn.execute("COMMIT")
        self._conn.close()
        self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is not None


def wait_for(
    predicate: Callable[[], bool], what: str, timeout: float = 60.0, proc: Proc | None = None
) -> None:
    """Poll `predicate` every millisecond; fail naming `what` (and the process's stderr)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"lwr exited ({proc.returncode}) before {what}:\n{proc.stderr_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL)


# --------------------------------------------------------------------------- processes


class Proc:
    """A real `lwr` process the test can freeze (SIGSTOP), continue, signal and kill.

    Its output goes to files (a 10,000-change plan would fill a pipe and block it). Every
    wait goes through os.waitpid, so stops and exits are both seen; the exit status is put
    back on the Popen object so it never thinks the child is still running.
    """

    def __init__(
        self, args: Sequence[str], *, env: dict[str, str], cwd: Path, name: str = "lwr"
    ) -> None:
        self.out_path = cwd / f"{name}-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [LWR, *args],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self.popen.pid
        self.started = time.monotonic()

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _settle(self, status: int) -> None:
        self.popen.returncode = os.waitstatus_to_exitcode(status)

    def poll(self) -> int | None:
        if self.popen.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._settle(status)
        return self.popen.returncode

    def freeze(self) -> bool:
        """SIGSTOP and wait until stopped; False when it has exited instead."""
        if self.poll() is not None:
            return False
        os.kill(self.pid, signal.SIGSTOP)
        _, status = os.waitpid(self.pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            return True
        self._settle(status)
        return False

    def thaw(self) -> None:
        if self.popen.returncode is None:
            os.kill(self.pid, signal.SIGCONT)

    def signal(self, signum: int, *, group: bool = False) -> None:
        if self.popen.returncode is None:
            if group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)

    def kill(self) -> int:
        """SIGKILL (works on a frozen process too) and reap."""
        if self.popen.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.wait(30)

    def wait(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(10)
                raise AssertionError(
                    f"lwr did not exit within {timeout} s:\n{self.stderr_text()[-2000:]}"
                )
            time.sleep(POLL * 5)
        code = self.popen.returncode
        assert code is not None
        return code

    def stdout_text(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr_text(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def has_fd_to(self, path: Path) -> bool:
        """Whether the process has `path` open (Linux /proc): it is past start-up."""
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with suppress(OSError):
                    if os.readlink(f"/proc/{self.pid}/fd/{fd}") == str(path):
                        return True
        return False


@dataclass
class Done:
    """A finished `lwr` run."""

    code: int
    out: str
    err: str
    seconds: float


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """One scenario's files: a pristine tenant to copy from, the desired file, its plan."""

    scenario: Scenario
    root: Path
    plan: list[dict[str, Any]] = field(default_factory=list)
    _batches: list[list[str]] = field(default_factory=list, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    _changes: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def pristine(self) -> Path:
        return self.root / "pristine.db"

    @property
    def desired(self) -> Path:
        return self.root / "desired.yaml"

    def batches(self) -> list[list[str]]:
        """The ids of each batch the executor makes of the plan (consecutive, ≤500, one phase)."""
        if not self._batches:
            phase = {c["id"]: c["phase"] for c in self.plan}
            for change in self.plan:
                last = self._batches[-1] if self._batches else None
                if last and len(last) < BATCH and phase[last[0]] == change["phase"]:
                    last.append(change["id"])
                else:
                    self._batches.append([change["id"]])
            self._index = {cid: i for i, b in enumerate(self._batches) for cid in b}
            self._changes = {c["id"]: c for c in self.plan}
        return self._batches

    def batch_of(self, change_id: str) -> int:
        self.batches()
        return self._index[change_id]

    def change(self, change_id: str) -> dict[str, Any]:
        self.batches()
        return self._changes[change_id]

    @classmethod
    def build(cls, scenario: Scenario, root: Path) -> World:
        world = cls(scenario, root)
        root.mkdir(parents=True, exist_ok=True)
        world.desired.write_text(scenario.desired_yaml(), encoding="utf-8")
        tenant = root / "tenant.db"
        env = world.env(tenant)
        done = run_lwr(
            ["tenant", "init", "--demo", "--members", str(scenario.members)], env=env, cwd=root
        )
        assert done.code == 0, done.err
        assert not Path(f"{tenant}-wal").exists() or Path(f"{tenant}-wal").stat().st_size == 0
        done = run_lwr(["plan", str(world.desired), "--format", "json"], env=env, cwd=root)
        assert done.code == 0, done.err
        world.plan = json.loads(done.out)["changes"]
        assert len(world.plan) == scenario.size, len(world.plan)
        shutil.move(tenant, world.pristine)
        for suffix in ("-wal", "-shm"):
            Path(f"{tenant}{suffix}").unlink(missing_ok=True)
        return world

    def env(self, tenant: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LWR_")}
        env.update(
            LWR_TENANT=f"local:{tenant}",
            NO_COLOR="1",
            LWR_ACTOR="crash-test",
            LC_ALL="C.UTF-8",
            PYTHONIOENCODING="utf-8",
        )
        return env

    def attempt(self, name: str) -> Attempt:
        return Attempt(self, self.root / name)


def run_lwr(args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = 300.0) -> Done:
    started = time.monotonic()
    proc = subprocess.run(
        [LWR, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Done(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


APPLY_ARGS = ("--auto-approve", "--allow-destructive")


class Attempt:
    """One run of the scenario in its own directory: a fresh tenant copy and state store."""

    def __init__(self, world: World, directory: Path) -> None:
        self.world = world
        self.dir = directory
        directory.mkdir(parents=True)
        self.tenant = directory / "tenant.db"
        self.state = directory / "state.db"
        shutil.copyfile(world.pristine, self.tenant)
        self._init_state()  # the store exists before the apply starts: a gate can go on it
        self.env = world.env(self.tenant)
        self.tenant_gate = Gate(self.tenant)
        self.state_gate = Gate(self.state)

    def _init_state(self) -> None:
        from reconciler.store.sqlite import SqliteStateStore

        SqliteStateStore(self.state).close()

    def apply(self, *, gated: bool = False) -> Proc:
        """Start `lwr apply`; `gated`: with the tenant gate closed, so that it stops at its
        first tenant write and `hold_before_*` can move it batch by batch from there."""
        if gated:
            self.tenant_gate.close()
        return Proc(
            ["apply", str(self.world.desired), *APPLY_ARGS],
            env=self.env,
            cwd=self.dir,
            name="apply",
        )

    def lwr(self, *args: str) -> Done:
        return run_lwr(args, env=self.env, cwd=self.dir)

    def release(self) -> None:
        self.tenant_gate.open()
        self.state_gate.open()

    # -- where is the apply? --------------------------------------------------------------

    def applied(self) -> set[str]:
        return applied_ids(self.world.plan, self.tenant)

    def batch_on_tenant(self, index: int) -> bool:
        """Whether batch `index` is on the tenant: one change tells (a batch is atomic)."""
        return holds_one(self.world.change(self.world.batches()[index][0]), self.tenant)

    def blocked_batch(self) -> int | None:
        """Index of the batch journaled `started` and not on the tenant (None if there is none).

        With the tenant gate closed, that is the batch the apply waits to write.
        """
        started = started_ids(self.state)
        if not started:
            return None
        index = self.world.batch_of(started[0])
        batch = self.world.batches()[index]
        if len(started) != len(batch) or self.batch_on_tenant(index):
            return None
        return index

    def hold_before_tenant_write(self, proc: Proc, k: int) -> int:
        """Freeze `proc` waiting to write batch ≥ k to the tenant, its journal entries `started`.

        Moves it one write at a time, alternating the gates, until it waits at batch ≥ k;
        start it with `apply(gated=True)` (a free-running apply may finish first). Returns
        the batch it waits at. Leaves the tenant gate closed.
        """
        self.tenant_gate.close()
        while True:
            index = self._poll_blocked(proc)
            if index >= k:
                return index
            self.step_past_tenant_write(proc, index)

    def _poll_blocked(self, proc: Proc, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while (index := self.blocked_batch()) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no batch waiting for the tenant (lwr exit "
                    f"{proc.returncode}):\n{proc.stderr_text()[-2000:]}"
                )
            time.sleep(POLL)
        return index

    def step_past_tenant_write(self, proc: Proc, index: int) -> None:
        """From waiting at batch `index`'s tenant write: let that one write through only."""
        self.state_gate.close()  # it waits on the tenant: it cannot hold the store's lock
        self.tenant_gate.open()
        wait_for(lambda: self.batch_on_tenant(index), f"batch {index} on the tenant", proc=proc)
        self.tenant_gate.close()  # it now waits on the store: it cannot hold the tenant's
        self.state_gate.open()

    def hold_before_journal_done(self, proc: Proc, k: int) -> int:
        """Freeze `proc` after the tenant committed batch ≥ k, before the journal says done.

        Leaves the state gate closed (and the tenant gate open). Returns the batch.
        """
        index = self.hold_before_tenant_write(proc, k)
        self.state_gate.close()
        self.tenant_gate.open()
        wait_for(lambda: self.batch_on_tenant(index), f"batch {index} on the tenant", proc=proc)
        return index

    def freeze_inside(
        self, proc: Proc, db: Path, condition: Callable[[], bool], gate: Gate, tries: int = 2000
    ) -> bool:
        """Open `gate` and single-step `proc` (SIGCONT, ~0.3 ms, SIGSTOP) until it holds
        `db`'s write lock while `condition` holds. Leaves it frozen there; False if missed."""
        assert proc.freeze()
        gate.open()
        for _ in range(tries):
            proc.thaw()
            time.sleep(random.uniform(0.0001, 0.0005))
            if not proc.freeze():
                return False
            if write_locked(db) and condition():
                return True
        return False


# --------------------------------------------------------------------------- the checks


def check_race_decided_by_the_lock(
    attempt: Attempt, racers: Sequence[Proc], winner: Proc, changes: int
) -> None:
    """Every racer but the (frozen) winner exits 3 naming it; then the winner finishes."""
    for loser in (p for p in racers if p is not winner):
        assert loser.wait() == 3, loser.stderr_text()
        err = loser.stderr_text()
        assert f"(pid {winner.pid}) running 'apply'" in err, err
        assert "wait for it to finish" in err and "Traceback" not in err
    winner.thaw()
    attempt.release()
    assert winner.wait() == 0, winner.stderr_text()
    assert f"Apply complete: {changes} changes applied" in winner.stdout_text()


@dataclass
class KillReport:
    """What one kill point looked like and what the re-run did (for the stress report)."""

    name: str
    where: str
    applied_at_kill: int
    in_doubt: int
    recovered: int
    rerun_seconds: float
    took_over: bool


def check_after_stop(
    attempt: Attempt, *, name: str, where: str, expect_lock_left: bool | None = None
) -> KillReport:
    """docs/contract.md#guarantees after an apply died or stopped, checked from outside."""
    world, plan = attempt.world, attempt.world.plan
    applied = attempt.applied()
    j = journal(attempt.state)
    # Write-ahead: the tenant is never ahead of the journal, the journal never ahead of it.
    journaled = {cid for cid in applied if {"started", "done"} & set(j.states(cid))}
    assert applied == journaled, f"{len(applied - journaled)} changes on the tenant unjournaled"
    done = {cid for e in j.entries.values() for cid, s in e.items() if s == "done"}
    assert done <= applied, f"{len(done - applied)} journaled done but not on the tenant"
    for batch in world.batches():  # a batch is one tenant transaction: all of it or none
        landed = set(batch) & applied
        assert not landed or landed == set(batch), "half a batch on the tenant"
    in_doubt = {cid for cid, s in j.latest.items() if s == "started"} if j.runs else set()
    if expect_lock_left is not None:
        assert bool(j.locks) is expect_lock_left, j.locks

    # `lwr plan` shows exactly the remaining changes, in the original order.
    shown = attempt.lwr("plan", str(world.desired), "--format", "json")
    assert shown.code == 0, shown.err
    remaining = [c["id"] for c in plan if c["id"] not in applied]
    assert [c["id"] for c in json.loads(shown.out)["changes"]] == remaining

    verified = attempt.lwr("audit", "--verify")
    assert verified.code == 0 and "hash chain intact" in verified.out, verified.err

    # A re-run finishes the job, recovering (never repeating) what was in flight.
    rerun = attempt.lwr("apply", str(world.desired), *APPLY_ARGS)
    assert rerun.code == 0, rerun.err
    took_over = "Took over the lock" in rerun.err
    assert took_over is bool(j.locks), (j.locks, rerun.err)
    recovered = in_doubt & applied
    if remaining:
        assert f"Apply complete: {len(remaining)} changes applied" in rerun.out, rerun.out
    if recovered and remaining:
        assert f"{len(recovered)} recovered from an interrupted run" in rerun.out, rerun.out
    elif recovered:  # killed in the last batch: nothing left to apply, only to record
        assert f"Recorded {plural(len(recovered), 'change')} of the interrupted run" in rerun.out, (
            rerun.out
        )
    check_converged(attempt)
    return KillReport(
        name, where, len(applied), len(in_doubt), len(recovered), rerun.seconds, took_over
    )


def check_converged(attempt: Attempt) -> None:
    """The tenant is the desired state, and every change landed exactly once.

    Read with plain SQL; `make stress` also asks `lwr plan --detailed-exitcode` (one more
    process start per kill point, which `make test` saves).
    """
    from reconciler.store.sqlite import SqliteStateStore

    world, plan = attempt.world, attempt.world.plan
    if stress():
        final = attempt.lwr("plan", str(world.desired), "--detailed-exitcode")
        assert final.code == 0, final.out[-2000:] + final.err
    facts = tenant_facts(attempt.tenant)
    assert facts.lists["line"] == frozenset(world.scenario.desired_line())
    assert facts.lists["lineworks"] == frozenset(world.scenario.desired_lineworks())
    assert all(holds(c, facts) for c in plan)
    j = journal(attempt.state)
    landed = Counter(cid for _, cid, result in j.audit if result in ("applied", "recovered"))
    assert set(landed) == {c["id"] for c in plan}, "an audit row for a change not planned"
    twice = {cid: n for cid, n in landed.items() if n != 1}
    assert not twice, f"applied more than once: {list(twice.items())[:5]}"
    assert j.locks == [] and all(status != "running" for _, status in j.runs), j.runs
    assert not [cid for e in j.entries.values() for cid, s in e.items() if s == "started"]
    with SqliteStateStore(attempt.state) as store:
        assert store.verify_audit().ok


def format_reports(reports: Sequence[KillReport]) -> str:
    head = (
        f"{'kill point':<34} {'where':<44} {'applied':>7} {'in doubt':>8} "
        f"{'recovered':>9} {'re-run s':>8} {'took over':>9}"
    )
    lines = [head, "-" * len(head)]
    lines += [
        f"{r.name:<34} {r.where:<44} {r.applied_at_kill:>7} {r.in_doubt:>8} "
        f"{r.recovered:>9} {r.rerun_seconds:>8.2f} {'yes' if r.took_over else 'no':>9}"
        for r in reports
    ]
    return "\n".join(lines)

"""Terraform's habits, through the real `lwr` executable with a real second process holding
the tenant lock: a locked tenant is said before any plan is printed, `--lock-timeout` waits
for the holder (naming it once) and then refuses with exit 3 as before, and a saved plan is
applied without asking again (docs/gitops.md).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_gitops import ADD_DAVE, line_members, write

from reconciler.cli import run

LWR = str(Path(sys.executable).parent / "lwr")

#: Holds the tenant's lock in its own process until a line arrives on stdin (in the store
#: the commands use: LWR_STATE, else state.db beside the tenant).
HOLD = """
import os, sys
from contextlib import closing
from reconciler.store import StateLocation
state = StateLocation.resolve(os.environ.get("LWR_STATE"), sys.argv[1])
with closing(state.open()) as store, store.lock(sys.argv[2], "apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def held(root: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the demo tenant's lock; released when the block ends."""
    tenant = f"local:{root}/tenant.db"
    key = f"local:{(root / 'tenant.db').resolve()}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, tenant, key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    try:
        yield holder
    finally:
        release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        holder.communicate("\n", timeout=30)


@contextmanager
def started(*argv: str) -> Iterator[subprocess.Popen[str]]:
    """`lwr argv` running in the background; killed if the test ends before it does."""
    proc = subprocess.Popen(
        [LWR, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def lwr(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LWR, *argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def add(demo: Path) -> str:
    return write(demo / "add.yaml", ADD_DAVE)


@pytest.mark.parametrize("saved", [False, True], ids=["file", "saved-plan"])
def test_a_locked_tenant_is_reported_before_the_plan_is_printed(
    demo_state: Path, add: str, saved: bool
) -> None:
    demo = demo_state
    target = add
    if saved:
        assert run(["plan", add, "--out", str(demo / "plan.json")]) == 0
        target = str(demo / "plan.json")
    with held(demo) as holder:
        done = lwr("apply", target, "--auto-approve")
    assert done.returncode == 3
    assert done.stdout == ""  # no plan that could not be applied
    assert f"is locked by {_user()}@" in done.stderr and f"(pid {holder.pid})" in done.stderr
    assert "Traceback" not in done.stderr
    assert "dave@example.co.jp" not in line_members(demo)


def test_lock_timeout_waits_for_the_holder_then_applies(demo_state: Path, add: str) -> None:
    demo = demo_state
    with (
        held(demo) as holder,
        started("apply", add, "--auto-approve", "--lock-timeout", "1m") as waiting,
    ):
        assert waiting.stderr is not None
        said = waiting.stderr.readline()  # it says so, then waits: nothing planned yet
        assert said == "Waiting up to 1m for the tenant's lock (--lock-timeout):\n"
        holder_lines = [waiting.stderr.readline() for _ in range(3)]
        assert f"(pid {holder.pid}) running 'apply' since " in holder_lines[1]
        # SQLite: the holder's process on this host; PostgreSQL: its database session.
        assert " is STILL " in holder_lines[2]
        time.sleep(0.5)
        assert waiting.poll() is None  # still waiting while the lock is held
        release(holder)
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "add member dave@example.co.jp" in out and "Apply complete: 1 change applied" in out
    assert "Waiting up to" not in err  # told once
    assert "dave@example.co.jp" in line_members(demo)


def test_lock_timeout_gives_up_with_the_exit_code_of_a_held_lock(
    demo_state: Path, add: str
) -> None:
    demo = demo_state
    with held(demo) as holder:
        started = time.monotonic()
        done = lwr("apply", add, "--auto-approve", "--lock-timeout", "1s")
        waited = time.monotonic() - started
    assert done.returncode == 3 and waited >= 1.0
    assert done.stdout == ""
    assert f"(pid {holder.pid})" in done.stderr
    assert done.stderr.count("Waiting up to 1s") == 1
    assert "(waited 1s for it: --lock-timeout)" in done.stderr


def test_lock_timeout_takes_durations_and_refuses_others(demo: Path, add: str) -> None:
    done = lwr("apply", add, "--auto-approve", "--lock-timeout", "soon")
    assert done.returncode == 1 and "--lock-timeout 'soon' is not a duration" in done.stderr
    assert done.stdout == ""
    assert lwr("apply", add, "--auto-approve", "--lock-timeout", "1m30s").returncode == 0


def test_a_directory_apply_waits_per_tenant(demo: Path, add: str) -> None:
    site = demo / "site"
    site.mkdir()
    write(site / "example.yaml", ADD_DAVE + f"target: local:{demo}/tenant.db\n")
    with held(demo):
        refused = lwr("apply", str(site), "--auto-approve")
    assert refused.returncode == 3 and "is locked by" in refused.stdout + refused.stderr
    wait = ("apply", str(site), "--auto-approve", "--lock-timeout", "1m")
    with held(demo) as holder, started(*wait) as waiting:
        time.sleep(1.5)
        assert waiting.poll() is None  # waiting for the lock, not refused
        release(holder)
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, out + err
    assert "dave@example.co.jp" in line_members(demo)


def test_a_saved_plan_is_applied_without_asking_again(demo: Path, add: str) -> None:
    assert run(["plan", add, "--out", str(demo / "plan.json")]) == 0
    asked = lwr("apply", add)  # a file is planned now: unreviewed, so apply asks
    assert asked.returncode == 1 and "refusing to apply without confirmation" in asked.stderr
    done = lwr("apply", str(demo / "plan.json"))  # the reviewed artifact: no question
    assert done.returncode == 0, done.stderr
    assert "Apply complete: 1 change applied" in done.stdout
    assert "dave@example.co.jp" in line_members(demo)
    assert "(it is the reviewed plan)" in " ".join(lwr("apply", "--help").stdout.split())


def _user() -> str:
    from reconciler.store.base import current_user

    return current_user()

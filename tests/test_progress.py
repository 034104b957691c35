"""Every apply shows its progress: a bar on a terminal, plain lines in a pipeline.

Through real `lwr` processes: on a pseudo-terminal (python `pty`; after typing `yes`, and with
--auto-approve) the rich bar is drawn with its phase; piped, a plain line comes at each
phase boundary, on the local tenant and on the LINE WORKS emulator; `lwr apply DIR` prints
per-tenant lines; an apply stopped by a signal says how far it got in the same words. The
10-second interval is tested with an injected clock.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import channel_state, tenant
from crashkit import APPLY_ARGS, Proc, Scenario, World
from emulator.harness import Harness, emulated

from reconciler.actions import Phase
from reconciler.model import ChannelName
from reconciler.outcomes import ApplyProgress
from reconciler.render.progress import PlainProgress, progress_line

LWR = str(Path(sys.executable).parent / "lwr")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
D = "example.co.jp"
LINE_RE = re.compile(r"^applied [\d,]+/[\d,]+ \(\d+ %\)", re.M)


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LWR_", "LW_"))}
    env.update(
        LWR_TENANT=f"local:{tmp_path}/tenant.db",
        LWR_ACTOR="ci-bot",
        LC_ALL="C.UTF-8",
        PYTHONIOENCODING="utf-8",
        COLUMNS="120",
        TERM="xterm-256color",
        **extra,
    )
    return env


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, str]:
    """A demo company of 2,000 members (the example plans about 200 changes)."""
    env = env_for(tmp_path)
    done = subprocess.run(
        [LWR, "tenant", "init", "--demo", "--members", "2000"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return env


def on_pty(args: list[str], env: dict[str, str], cwd: Path, answer: str | None = None) -> str:
    """Run `lwr` with stdin, stdout and stderr on a pseudo-terminal; type `answer` at the
    confirmation prompt. Returns all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([LWR, *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                out += data
                if answer is not None and b"Only 'yes' will be accepted" in out:
                    os.write(master, answer.encode() + b"\r")
                    answer = None
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    assert proc.wait(timeout=30) == 0, out.decode(errors="replace")[-3000:]
    return out.decode("utf-8", errors="replace")


def assert_bar(out: str) -> None:
    assert "━" in out, out[-2000:]  # rich's bar
    assert re.search(r"phase \d [a-z]", out) and "100%" in out
    assert not LINE_RE.search(out)  # no plain lines on a terminal
    assert "Apply complete:" in out


def test_interactive_apply_after_yes_shows_the_bar(demo: dict[str, str], tmp_path: Path) -> None:
    out = on_pty(["apply", str(EXAMPLE), "--allow-destructive"], demo, tmp_path, answer="yes")
    assert_bar(out)


def test_auto_approve_on_a_terminal_shows_the_bar(demo: dict[str, str], tmp_path: Path) -> None:
    assert_bar(on_pty(["apply", str(EXAMPLE), *APPLY_ARGS], demo, tmp_path))


def test_piped_apply_prints_a_plain_line_at_each_phase_boundary(
    demo: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [LWR, "apply", str(EXAMPLE), *APPLY_ARGS],
        env=demo,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = LINE_RE.findall(done.stderr)
    assert lines and "━" not in done.stderr
    shown = done.stderr.splitlines()
    assert shown[0].startswith("applied 0/") and "· phase 1 enable channels" in shown[0]
    for phase in ("phase 2 tighten", "phase 3 remove members", "phase 4 add members"):
        assert any(phase in line for line in shown), done.stderr
    total = re.search(r"Plan: ([\d,]+) changes", done.stdout)
    assert total is not None
    assert re.search(rf"^applied {total[1]}/{total[1]} \(100 %\) · phase \d", done.stderr, re.M)
    assert "/s" in shown[-1]  # the rate


def test_a_stopped_apply_says_how_far_it_got_in_the_same_words(tmp_path: Path) -> None:
    world = World.build(Scenario(1_000), tmp_path / "world")
    a = world.attempt("stopped")
    proc = a.apply(gated=True)
    at = a.hold_before_tenant_write(proc, 3)
    proc.signal(signal.SIGTERM)
    a.release()
    assert proc.wait() == 143
    err = proc.stderr_text()
    done = sum(len(b) for b in world.batches()[: at + 1])  # the batch in flight finishes
    how_far = f"applied {done:,}/1,000 ({done * 100 // 1000} %) · phase "
    assert how_far in err, err
    assert err.index(how_far) < err.index("Apply stopped by SIGTERM between batches")
    assert f"{done} of 1000 changes applied" in err


def test_apply_dir_prints_lines_per_tenant(demo: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "example.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    os.replace(tmp_path / "tenant.db", folder / f"{D}.db")
    done = subprocess.run(
        [LWR, "apply", str(folder), *APPLY_ARGS, "--tenant", f"local:{folder}/{{tenant}}.db"],
        env=demo,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"{D}: applied ")]
    assert lines and "· phase 1 enable channels" in lines[0] and "(100 %)" in lines[-1]


# -- the LINE WORKS emulator ---------------------------------------------------------------


@pytest.fixture
def lineworks(tmp_path: Path) -> Iterator[tuple[Harness, dict[str, str]]]:
    """Both channels on, empty lists, attested; 40 members to link."""
    people = frozenset(f"m{n:02}@{D}" for n in range(40))
    state = tenant(people, channel_state(ChannelName.LINE), channel_state(ChannelName.LINEWORKS))
    with emulated(tmp_path, state) as h:
        include = ", ".join(sorted(people))
        (tmp_path / "d.yaml").write_text(
            f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    members: "
            f"{{policy: exact, include: [{include}]}}\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in env_for(tmp_path).items() if k != "LWR_TENANT"}
        env.update(h.env(), LWR_TENANT=h.uri())
        yield h, env


def test_lineworks_apply_piped_and_on_a_terminal(
    lineworks: tuple[Harness, dict[str, str]], tmp_path: Path
) -> None:
    h, env = lineworks
    piped = Proc(["apply", "d.yaml", "--auto-approve"], env=env, cwd=tmp_path, name="apply")
    assert piped.wait() == 0, piped.stderr_text()
    err = piped.stderr_text()
    assert "applied 0/40 (0 %) · phase 4 add members" in err
    assert re.search(r"^applied 40/40 \(100 %\) · phase 4 add members · [\d.,]+/s$", err, re.M)

    with h.tenant.lock:  # undone in the console, attested: the same 40 links to make again
        h.tenant.channels[ChannelName.LINE].linked.clear()
    (tmp_path / "now.yaml").write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    members: "
        "{policy: exact, include: []}\n",
        encoding="utf-8",
    )
    attest = subprocess.run(
        [LWR, "attest", "now.yaml", "--yes"], env=env, cwd=tmp_path, capture_output=True
    )
    assert attest.returncode == 0, attest.stderr
    out = on_pty(["apply", "d.yaml", "--auto-approve"], env, tmp_path)
    assert "━" in out and "phase 4 add members" in out and "40/40" in out, out[-2000:]


# -- the 10-second interval, with an injected clock ------------------------------------------


def test_plain_lines_come_at_least_every_interval_and_not_more_often() -> None:
    now = [0.0]
    shown: list[str] = []
    lines = PlainProgress(shown.append, clock=lambda: now[0], interval=10.0)
    add = Phase.ADD
    lines(ApplyProgress(add, 0, 82_003))
    for done in range(500, 82_003, 500):  # a batch of 500 every 0.4 s: 1,250 a second
        now[0] += 0.4
        lines(ApplyProgress(add, done, 82_003, applied=done))
    assert shown[0] == "applied 0/82,003 (0 %) · phase 4 add members"
    assert len(shown) == 1 + int(now[0] // 10.0)  # the first, then one each 10 s
    assert shown[1] == ("applied 12,500/82,003 (15 %) · phase 4 add members · 1,250/s · ETA 56 s")
    lines(ApplyProgress(add, 82_003, 82_003, applied=82_003))
    assert shown[-1].startswith("applied 82,003/82,003 (100 %)")


def test_a_phase_boundary_prints_the_phase_that_ended_and_the_next() -> None:
    now = [0.0]
    shown: list[str] = []
    lines = PlainProgress(shown.append, clock=lambda: now[0], interval=10.0)
    lines(ApplyProgress(Phase.TIGHTEN, 0, 1_000))
    now[0] = 1.0
    lines(ApplyProgress(Phase.TIGHTEN, 2, 1_000, applied=2))
    now[0] = 2.0
    lines(ApplyProgress(Phase.ADD, 502, 1_000, applied=502))
    assert [line.split(" · ")[:2] for line in shown] == [
        ["applied 0/1,000 (0 %)", "phase 2 tighten (restrictions on, auto-grant off, list mode)"],
        ["applied 2/1,000 (0 %)", "phase 2 tighten (restrictions on, auto-grant off, list mode)"],
        ["applied 502/1,000 (50 %)", "phase 4 add members"],
    ]


def test_refused_and_skipped_are_counted_apart() -> None:
    line = progress_line(ApplyProgress(Phase.LOOSEN, 7, 7, applied=4, refused=2, skipped=1))
    assert line == (
        "applied 4/7 (57 %) · 2 refused · 1 skipped · "
        "phase 6 loosen (restrictions off, auto-grant on)"
    )


def test_a_long_batch_still_prints_a_line_every_interval() -> None:
    """A LINE WORKS batch of 50 links takes ~12 s at 240 requests a minute, and a rate-limit
    wait longer: the heartbeat repeats the last state while no event comes."""
    now = [0.0]
    shown: list[str] = []
    lines = PlainProgress(shown.append, clock=lambda: now[0], interval=10.0)
    lines(ApplyProgress(Phase.ADD, 50, 40_000, applied=50))
    for second in range(1, 31):  # 30 s inside the next batch
        now[0] = float(second)
        lines.tick()
    assert len(shown) == 4 and shown[-1] == (
        "applied 50/40,000 (0 %) · phase 4 add members · 1.7/s · ETA 6 h 39 min"
    )


def test_the_heartbeat_thread_ticks_and_stops() -> None:
    shown: list[str] = []
    lines = PlainProgress(shown.append, interval=0.02)
    with lines.heartbeat():
        lines(ApplyProgress(Phase.ADD, 0, 10))
        deadline = time.monotonic() + 5
        while len(shown) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(shown) >= 3 and len(set(shown)) == 1
    count = len(shown)
    time.sleep(0.1)
    assert len(shown) == count  # stopped on the way out

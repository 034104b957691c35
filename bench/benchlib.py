"""Shared by the bench/ scripts: the demo company's members, desired files, timed `lwr` runs
with their peak memory, the machine, and the results file the plot reads.

Nothing here is a test: the scripts print tables; docs/performance.md shows the latest ones.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from reconciler.providers.local import DEFAULT_DOMAIN, demo_directory

BIN = Path(sys.executable).parent
LWR = str(BIN / "lwr")
DOMAIN = DEFAULT_DOMAIN
OUT = Path(__file__).resolve().parent / "out"
SIZES = (1_000, 10_000, 100_000, 1_000_000)


def sizes(argv: Sequence[str]) -> list[int]:
    """N values from the command line (1k, 10k, 1e6 and 1_000 spellings), else SIZES."""
    out = []
    for arg in argv:
        text = arg.lower().replace("_", "")
        factor = 1_000 if text.endswith("k") else 1_000_000 if text.endswith("m") else 1
        out.append(int(float(text.rstrip("km")) * factor))
    return out or list(SIZES)


def directory(n: int) -> list[str]:
    """The members of `lwr tenant init --demo --members n`."""
    return demo_directory(n, DOMAIN)


def desired_file(path: Path, include: Sequence[str]) -> int:
    """A desired state managing the LINE list exactly; returns the file's size in bytes."""
    lines = [
        "version: 1",
        f"tenant: {DOMAIN}",
        "external_messaging:",
        "  line:",
        "    enabled: true",
        "    members:",
        "      policy: exact",
        "      include:",
    ]
    text = "\n".join(lines) + "\n" + "".join(f"        - {m}\n" for m in include)
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def list_everyone(tenant: Path) -> None:
    """Bench set-up only: put the whole directory on the LINE list with plain SQL (what a
    completed `lwr apply` leaves; apply itself is measured by apply_bench.py)."""
    with closing(sqlite3.connect(tenant)) as conn:
        conn.execute(
            "INSERT OR IGNORE INTO connected (channel, email) SELECT 'line', email FROM members"
        )
        conn.commit()


@dataclass(frozen=True)
class Run:
    """One finished process: wall seconds, peak resident memory, exit code."""

    seconds: float
    peak_mib: float
    code: int
    stderr: str


def timed(
    args: Sequence[str], env: dict[str, str] | None = None, ok: Sequence[int] = (0, 2)
) -> Run:
    """Run a process to completion; its own peak RSS comes from wait4 (not the whole tree)."""
    started = time.perf_counter()
    with (
        open(os.devnull, "wb") as devnull,
        subprocess.Popen(
            list(args), stdout=devnull, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
        ) as proc,
    ):
        assert proc.stderr is not None
        err = proc.stderr.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
    run = Run(time.perf_counter() - started, usage.ru_maxrss / 1024, code, err)
    if code not in ok:
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{err[-2000:]}")
    return run


def lwr(*args: str, env: dict[str, str] | None = None, ok: Sequence[int] = (0, 2)) -> Run:
    return timed([LWR, *args], env, ok)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
    }


def save(name: str, rows: list[dict[str, float]]) -> Path:
    """bench/out/NAME.json: the rows and the machine, for plot.py and docs/performance.md."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(
        json.dumps(
            {"machine": machine(), "rows": rows, "at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2
        )
    )
    return path


def print_machine() -> None:
    m = machine()
    print(
        f"# {m['cpu']}, {m['nproc']} CPUs, Python {m['python']}, SQLite {m['sqlite']}, "
        f"{m['system']}"
    )

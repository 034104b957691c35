"""Time `lwr plan` as a whole process against a bare YAML parse of the same file.

Usage: python bench/plan_bench.py [N ...]   (default: 10000 100000)
Prints a table; nothing here is a test. Scenario: a tenant whose LINE list holds every member,
and a desired file listing every member but 1 % (a steady-state GitOps run with some churn).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LWR = str(BIN / "lwr")
DOMAIN = "example.co.jp"
NAMED = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
REPEAT = 5


def members(n: int) -> list[str]:
    """The demo directory of `lwr tenant init --demo --members n`."""
    named = [f"{name}@{DOMAIN}" for name in NAMED]
    return named + [f"member{i:06d}@{DOMAIN}" for i in range(len(named) + 1, n + 1)]


def desired_file(path: Path, include: list[str]) -> None:
    lines = ["version: 1", f"tenant: {DOMAIN}", "external_messaging:", "  line:",
             "    enabled: true", "    members:", "      policy: exact", "      include:"]
    lines += [f"        - {m}" for m in include]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def lwr_ok(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([LWR, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"lwr {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return time.perf_counter() - started


def bench(n: int, work: Path) -> dict[str, float]:
    env = {**os.environ, "LWR_TENANT": f"local:{work}/tenant.db", "NO_COLOR": "1"}
    everyone = members(n)
    full, churned = work / "full.yaml", work / "churned.yaml"
    desired_file(full, everyone)
    desired_file(churned, everyone[: n - n // 100])
    lwr_ok("tenant", "init", "--demo", "--members", str(n), "--force", env=env)
    apply_s = lwr_ok("apply", str(full), "--auto-approve", "--allow-destructive", env=env)
    parse = [sys.executable, "-c",
             "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)",
             str(churned)]
    plans, parses = [], []
    for _ in range(REPEAT):  # interleaved, so machine noise hits both sides alike
        plans.append(lwr_ok("plan", str(churned), env=env))
        parses.append(run(*parse, env=env))
    plan_s, parse_s = statistics.median(plans), statistics.median(parses)
    return {"apply": apply_s, "plan": plan_s, "parse": parse_s}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    print(f"{'N':>9} {'plan s':>8} {'parse s':>8} {'ratio':>6} {'initial apply s':>16}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(n, Path(tmp))
        print(f"{n:>9} {r['plan']:>8.2f} {r['parse']:>8.2f} {r['plan'] / r['parse']:>6.2f} "
              f"{r['apply']:>16.2f}")


if __name__ == "__main__":
    main()

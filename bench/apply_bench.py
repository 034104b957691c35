"""Local apply of N member changes: wall time, changes per second, peak memory; N = 1k … 1M.

Usage: python bench/apply_bench.py [N ...]   (default: 1k 10k 100k 1M)

Each N: a demo tenant whose LINE list holds every tenth member, and a desired file adding
exactly N members. `lwr apply --auto-approve` runs as a whole process (plan, lock, journal,
tenant writes in batches of 500, hash-chained audit rows); `lwr plan` of the same file is
timed beside it, so "apply s" is the apply minus the planning it starts with. Peak memory
is the process's own maximum resident set (wait4). Prints µs per change to show growth.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchlib import desired_file, directory, lwr, print_machine, save, sizes

from reconciler.providers.local import demo_line_list


def bench(n: int, work: Path) -> dict[str, float]:
    members = n * 10 // 9 + 20  # every tenth is listed already: ~0.9 of them can be added
    env = {"LWR_TENANT": f"local:{work}/tenant.db", "NO_COLOR": "1"}
    lwr("tenant", "init", "--demo", "--members", str(members), "--force", env=env)
    everyone = directory(members)
    listed = demo_line_list(members)
    unlisted = [m for m in everyone if m not in set(listed)]
    desired_file(work / "d.yaml", listed + unlisted[:n])
    plan = lwr("plan", str(work / "d.yaml"), env=env)
    run = lwr("apply", str(work / "d.yaml"), "--auto-approve", env=env, ok=(0,))
    applying = max(run.seconds - plan.seconds, 1e-9)
    return {
        "n": n,
        "total_s": run.seconds,
        "plan_s": plan.seconds,
        "apply_s": applying,
        "changes_per_s": n / applying,
        "peak_mib": run.peak_mib,
        "us_per_change": applying / n * 1e6,
    }


def main() -> None:
    print_machine()
    print(
        f"{'N':>9} {'total s':>8} {'plan s':>7} {'apply s':>8} {'changes/s':>10} "
        f"{'peak MiB':>9} {'µs/change':>9}"
    )
    rows = []
    for n in sizes(sys.argv[1:]):
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(n, Path(tmp))
        rows.append(r)
        print(
            f"{n:>9,} {r['total_s']:>8.2f} {r['plan_s']:>7.2f} {r['apply_s']:>8.2f} "
            f"{r['changes_per_s']:>10,.0f} {r['peak_mib']:>9.0f} {r['us_per_change']:>9.1f}",
            flush=True,
        )
    save("apply", rows)


if __name__ == "__main__":
    main()

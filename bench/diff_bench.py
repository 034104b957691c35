"""The planner against a naive DeepDiff-based diff of the same data, side by side, in process.

Usage: python bench/diff_bench.py [N ...]   (default: 1k 10k 100k; DeepDiff gets slow fast)

Both sides get the same inputs, already loaded: the desired state (the file parsed and
validated once) and the tenant state (read once). "plan" is reconciler.plan.make_plan: the
ordered changes with side effects and digests. "deepdiff" is what a tool without a planner
would do: DeepDiff(current, desired, ignore_order=True) over the two documents, which yields
an unordered difference with no phases, side effects or safety class. Scenario: every member
listed, the file drops 1 % and adds 1 % new hires. Median of a few runs each.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import desired_file, directory, list_everyone, lwr, print_machine, save, sizes
from deepdiff import DeepDiff

from reconciler.desired import load_desired
from reconciler.model import TenantState
from reconciler.plan import make_plan
from reconciler.providers.local import LocalTenant


def document(state: TenantState) -> dict[str, Any]:
    """The tenant as the same nested shape as a desired-state file (lists sorted)."""
    line = state.channels["line"]  # type: ignore[index]
    return {
        "version": 1,
        "tenant": state.domain,
        "external_messaging": {
            "line": {
                "enabled": line.enabled,
                "members": {"policy": "exact", "include": sorted(line.members)},
            }
        },
    }


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(n: int, work: Path) -> dict[str, float]:
    env = {"LWR_TENANT": f"local:{work}/tenant.db", "NO_COLOR": "1"}
    everyone = directory(n + n // 100)  # the last 1 % are new hires, not yet listed
    lwr("tenant", "init", "--demo", "--members", str(len(everyone)), "--force", env=env)
    list_everyone(work / "tenant.db")
    with LocalTenant.open(work / "tenant.db") as tenant:
        tenant._conn.execute(
            "DELETE FROM connected WHERE email IN (SELECT email FROM members "
            "ORDER BY email DESC LIMIT ?)",
            (n // 100,),
        )
        current = tenant.read()
    wanted = everyone[n // 100 :]  # drop 1 % of the listed, add the 1 % new hires
    desired_file(work / "d.yaml", wanted)
    desired = load_desired(work / "d.yaml")
    import yaml

    desired_doc = yaml.safe_load((work / "d.yaml").read_text())
    current_doc = document(current)
    repeat = 3 if n <= 100_000 else 1
    plan_s = best(lambda: make_plan(desired, current, "local:bench"), repeat)
    changes = len(make_plan(desired, current, "local:bench").changes)
    deep_s = best(lambda: DeepDiff(current_doc, desired_doc, ignore_order=True), repeat)
    return {
        "n": n,
        "changes": changes,
        "plan_s": plan_s,
        "deepdiff_s": deep_s,
        "ratio": deep_s / plan_s,
    }


def main() -> None:
    print_machine()
    print(f"{'N':>9} {'changes':>8} {'plan s':>9} {'deepdiff s':>11} {'deepdiff/plan':>13}")
    rows = []
    for n in sizes(sys.argv[1:]) if sys.argv[1:] else [1_000, 10_000, 100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(n, Path(tmp))
        rows.append(r)
        print(
            f"{n:>9,} {r['changes']:>8,} {r['plan_s']:>9.3f} {r['deepdiff_s']:>11.3f} "
            f"{r['ratio']:>13.1f}",
            flush=True,
        )
    save("diff", rows)


if __name__ == "__main__":
    main()

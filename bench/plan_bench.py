"""`lwr plan` as a whole process against a bare YAML parse of the same file, N = 1k … 1M.

Usage: python bench/plan_bench.py [N ...]   (default: 1k 10k 100k 1M)
       python bench/plan_bench.py selectors [N ...]   (default: 100k)

Scenario: a steady-state GitOps run. The tenant's LINE list holds every member; the desired
file lists every member but 1 % (so the plan removes 1 %). "parse" is `python -c` loading
the same file with yaml.CSafeLoader, the floor any YAML-reading tool pays. Runs alternate
plan/parse so machine noise hits both alike; the median of REPEAT runs is shown (one run
at 1M). Prints a table, the ratio, and µs per member to show linear growth.
Targets (issue 6): plan at most 2x parse at 100k; plan at 1M under 15 s and 1.5 GB.

`selectors` (issue 16): the demo company of N members (its org units), a file selecting
営業部 and 開発部 (sub-units included) against a plain file listing exactly the members they
select, the tenant's list holding all of them but 1 % (each plan adds the same 1 %); the two
plans alternate. Target: the selectors plan within 10 % of the plain one.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
from contextlib import closing
from pathlib import Path

from benchlib import (
    DOMAIN,
    desired_file,
    directory,
    list_everyone,
    lwr,
    print_machine,
    save,
    sizes,
    timed,
)

REPEAT = 5


def bench(n: int, work: Path) -> dict[str, float]:
    env = {"LWR_TENANT": f"local:{work}/tenant.db", "NO_COLOR": "1"}
    everyone = directory(n)
    churned = work / "churned.yaml"
    size = desired_file(churned, everyone[: n - n // 100])
    lwr("tenant", "init", "--demo", "--members", str(n), "--force", "--domain", DOMAIN, env=env)
    list_everyone(work / "tenant.db")
    parse = [
        sys.executable,
        "-c",
        "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)",
        str(churned),
    ]
    plans, parses = [], []
    for _ in range(1 if n >= 1_000_000 else REPEAT):
        plans.append(lwr("plan", str(churned), env=env))
        parses.append(timed(parse))
    plan_s = statistics.median(r.seconds for r in plans)
    parse_s = statistics.median(r.seconds for r in parses)
    return {
        "n": n,
        "file_mb": size / 2**20,
        "plan_s": plan_s,
        "parse_s": parse_s,
        "ratio": plan_s / parse_s,
        "plan_peak_mib": max(r.peak_mib for r in plans),
        "parse_peak_mib": max(r.peak_mib for r in parses),
        "us_per_member": plan_s / n * 1e6,
    }


SELECTED = ("営業部", "開発部")


def bench_selectors(n: int, work: Path) -> dict[str, float]:
    tenant = work / "tenant.db"
    env = {"LWR_TENANT": f"local:{tenant}", "NO_COLOR": "1"}
    lwr("tenant", "init", "--demo", "--members", str(n), "--force", "--domain", DOMAIN, env=env)
    from reconciler.providers.local import LocalTenant

    with LocalTenant.open(tenant) as provider:  # set-up only: who the selectors select
        chart = provider.org_chart()
    by_path = {chart.path(unit): unit for unit in chart.units}
    chosen = sorted(set().union(*(chart.members_under(by_path[p]) for p in SELECTED)))
    plain = work / "plain.yaml"
    desired_file(plain, chosen)
    selectors = work / "selectors.yaml"
    head = plain.read_text(encoding="utf-8").split("      include:")[0]
    selectors.write_text(head + f"      include_orgunits: [{', '.join(SELECTED)}]\n", "utf-8")
    with closing(sqlite3.connect(tenant)) as conn:  # listed: all of them but 1 %
        conn.execute("DELETE FROM connected WHERE channel = 'line'")
        conn.executemany(
            "INSERT INTO connected (channel, email) VALUES ('line', ?)",
            [(m,) for i, m in enumerate(chosen) if i % 100],
        )
        conn.commit()
    plains, selected = [], []
    for _ in range(REPEAT):
        plains.append(lwr("plan", str(plain), env=env))
        selected.append(lwr("plan", str(selectors), env=env))
    plain_s = statistics.median(r.seconds for r in plains)
    selectors_s = statistics.median(r.seconds for r in selected)
    return {
        "n": n,
        "selected": len(chosen),
        "plain_s": plain_s,
        "selectors_s": selectors_s,
        "ratio": selectors_s / plain_s,
        "plain_peak_mib": max(r.peak_mib for r in plains),
        "selectors_peak_mib": max(r.peak_mib for r in selected),
    }


def main_selectors(argv: list[str]) -> None:
    print_machine()
    print(
        f"{'N':>9} {'selected':>9} {'plain s':>8} {'select s':>8} {'ratio':>6} "
        f"{'plain MiB':>9} {'select MiB':>10}"
    )
    rows = []
    for n in sizes(argv) if argv else [100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench_selectors(n, Path(tmp))
        rows.append(r)
        print(
            f"{n:>9,} {r['selected']:>9,} {r['plain_s']:>8.2f} {r['selectors_s']:>8.2f} "
            f"{r['ratio']:>6.2f} {r['plain_peak_mib']:>9.0f} {r['selectors_peak_mib']:>10.0f}",
            flush=True,
        )
    save("plan-selectors", rows)


def main() -> None:
    if sys.argv[1:2] == ["selectors"]:
        main_selectors(sys.argv[2:])
        return
    print_machine()
    print(
        f"{'N':>9} {'file MB':>8} {'plan s':>8} {'parse s':>8} {'plan/parse':>10} "
        f"{'plan MiB':>9} {'parse MiB':>9} {'µs/member':>9}"
    )
    rows = []
    for n in sizes(sys.argv[1:]):
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(n, Path(tmp))
        rows.append(r)
        print(
            f"{n:>9,} {r['file_mb']:>8.1f} {r['plan_s']:>8.2f} {r['parse_s']:>8.2f} "
            f"{r['ratio']:>10.2f} {r['plan_peak_mib']:>9.0f} {r['parse_peak_mib']:>9.0f} "
            f"{r['us_per_member']:>9.1f}",
            flush=True,
        )
    save("plan", rows)


if __name__ == "__main__":
    main()

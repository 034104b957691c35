"""Many tenants, one state: `lwr plan DIR` and `lwr apply DIR` over T tenants of M members,
with --parallel 1, 2, 4, the state in local SQLite and in PostgreSQL.

Usage: python bench/fleet_bench.py [--tenants 200] [--members 1000] [--parallel 1 2 4]
                                   [--runs 3] [--postgres URL]

Each tenant is a demo company (`tenant init --demo --members M`); its desired file lists
every member on LINE exactly, so an apply adds about 0.9 x M members per tenant (journal,
lock and hash-chained audit rows for each). Every run is a whole `lwr` process. Plans are
timed `--runs` times (median); each apply starts from pristine tenant copies and an empty
state (a fresh SQLite file, or a freshly migrated PostgreSQL schema) and runs once.

Without --postgres, a throwaway server is started from the machine's PostgreSQL binaries
(tests/pgserver.py), on loopback, with fsync on (as a real server would run).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchlib import desired_file, directory, lwr, print_machine, save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def build(work: Path, tenants: int, members: int) -> tuple[Path, str, int]:
    """Pristine tenants, the desired directory, the --tenant template, changes per apply."""
    from reconciler.providers.local import init_demo

    pristine, desired = work / "pristine", work / "desired"
    pristine.mkdir()
    desired.mkdir()
    everyone = directory(members)
    changes = 0
    for i in range(tenants):
        domain = f"t{i:03d}.example"
        with init_demo(pristine / f"{domain}.db", domain=domain, members=members) as t:
            listed = t.read().channels["line"].members  # type: ignore[index]
        include = [m.replace("example.co.jp", domain) for m in everyone]
        desired_file(desired / f"{domain}.yaml", include)
        text = (desired / f"{domain}.yaml").read_text(encoding="utf-8")
        (desired / f"{domain}.yaml").write_text(
            text.replace("tenant: example.co.jp", f"tenant: {domain}"), encoding="utf-8"
        )
        changes += len(include) - len(listed)
    return desired, f"local:{work}/tenants/{{tenant}}.db", changes


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """The server to use: the one given, or a throwaway one (durable: fsync on)."""
    if url:
        yield url
        return
    from pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries: pass --postgres URL")
    server = PgServer.start(bindir, durable=True)
    try:
        yield server.url()
    finally:
        server.stop()


def fresh_state(kind: str, work: Path, server: str) -> str:
    """An empty state of `kind` for one apply run."""
    if kind == "local":
        folder = work / f"state-{secrets.token_hex(4)}"
        return f"local:{folder}/state.db"
    url = f"{server}?schema=bench_{secrets.token_hex(4)}"
    lwr("state", "migrate", "--state", url)
    return url


def bench(args: argparse.Namespace, work: Path, server: str) -> list[dict[str, float | str]]:
    desired, template, changes = build(work, args.tenants, args.members)
    print(
        f"# {args.tenants} tenants x {args.members:,} members; an apply makes "
        f"{changes:,} changes in all",
        flush=True,
    )
    print(
        f"{'state':<10} {'K':>2} {'plan s':>7} {'tenants/s':>9} {'apply s':>8} "
        f"{'tenants/s':>9} {'changes/s':>9}",
        flush=True,
    )
    rows: list[dict[str, float | str]] = []
    for k in args.parallel:
        # Plans interleaved (local, PostgreSQL, local, …) so disk write-back after an apply
        # never lands on one backend's timings only.
        states = {kind: fresh_state(kind, work, server) for kind in KINDS}
        restore(work)
        plans: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for _ in range(args.runs):
            for kind in KINDS:
                plans[kind].append(lwr("plan", *common(desired, template, k, states[kind])).seconds)
        for kind in KINDS:
            restore(work)
            args_k = common(desired, template, k, states[kind])
            apply_s = lwr("apply", *args_k, "--auto-approve", ok=(0,)).seconds
            lwr("plan", *args_k, "--detailed-exitcode", ok=(0,))  # converged, or it stops
            plan_s = statistics.median(plans[kind])
            rows.append(
                {
                    "state": kind,
                    "parallel": k,
                    "plan_s": plan_s,
                    "plan_tenants_per_s": args.tenants / plan_s,
                    "apply_s": apply_s,
                    "apply_tenants_per_s": args.tenants / apply_s,
                    "changes_per_s": changes / apply_s,
                }
            )
            r = rows[-1]
            print(
                f"{kind:<10} {k:>2} {plan_s:>7.2f} {r['plan_tenants_per_s']:>9.1f} "
                f"{apply_s:>8.2f} {r['apply_tenants_per_s']:>9.1f} "
                f"{r['changes_per_s']:>9,.0f}",
                flush=True,
            )
    return rows


KINDS = ("local", "postgresql")


def restore(work: Path) -> None:
    """Every tenant back to its pristine copy."""
    shutil.rmtree(work / "tenants", ignore_errors=True)
    shutil.copytree(work / "pristine", work / "tenants")


def common(desired: Path, template: str, k: int, state: str) -> list[str]:
    return [str(desired), "--tenant", template, "--parallel", str(k), "--state", state]


def overhead(rows: list[dict[str, float | str]]) -> None:
    print("\nPostgreSQL state ÷ local state (wall time):")
    by = {(r["state"], r["parallel"]): r for r in rows}
    for (kind, k), r in by.items():
        if kind != "postgresql":
            continue
        local = by[("local", k)]
        print(
            f"  --parallel {k}: plan {float(r['plan_s']) / float(local['plan_s']):.2f}x, "
            f"apply {float(r['apply_s']) / float(local['apply_s']):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="use this server, not a throwaway")
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp, postgres(args.postgres) as server:
        rows = bench(args, Path(tmp), server)
    overhead(rows)
    save("fleet", rows)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

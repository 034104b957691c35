"""Apply N member changes to the LINE WORKS emulator and compare with the rate limit's bound.

Usage: python bench/api_bench.py [--changes 2000] [--rate 240] [--window 1.0] [--runs 3]
The emulator allows RATE requests per WINDOW seconds per API operation (the real API: 240 per
60 s; the window is scaled so a run takes seconds). Lower bound = changes / rate * window: no
client can link N members faster. Prints wall ÷ bound per run (target ≤ 1.05). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emulator import EmulatedTenant, Emulator, Limits, make_credentials
from emulator.harness import Harness

from reconciler import workflow
from reconciler.model import ChannelName
from reconciler.providers.local import DEFAULT_DOMAIN, extra_member
from reconciler.store.sqlite import SqliteStateStore

DOMAIN = DEFAULT_DOMAIN
LINE = ChannelName.LINE


def one_run(changes: int, rate: int, window: float, directory: Path) -> dict[str, float]:
    """Seed, attest, plan, and time the apply of `changes` LINE links."""
    tenant = EmulatedTenant(DOMAIN)
    emails = [extra_member(i, DOMAIN) for i in range(1, changes + 1)]
    for email in emails:
        tenant.add_user(email, "社員")
    tenant.channels[LINE].enabled = True  # LINE on, empty list
    credentials = make_credentials(directory / "app")
    with Emulator(tenant, credentials, Limits(rate=rate, window=window)) as emulator:
        h = Harness(emulator, credentials, directory / "lwr-state")
        now = directory / "now.yaml"
        now.write_text(
            f"version: 1\ntenant: {DOMAIN}\nexternal_messaging:\n  line:\n"
            "    enabled: true\n    members: {policy: exact, include: []}\n",
            encoding="utf-8",
        )
        desired = directory / "desired.yaml"
        desired.write_text(
            f"version: 1\ntenant: {DOMAIN}\nexternal_messaging:\n  line:\n    enabled: true\n"
            "    members:\n      policy: exact\n      include:\n"
            + "".join(f"        - {e}\n" for e in emails),
            encoding="utf-8",
        )
        provider = h.provider()
        store = SqliteStateStore(directory / "state.db")
        try:
            from reconciler.desired import load_desired

            provider.read()
            provider.attest(load_desired(now), "bench")
            plan = workflow.plan_file(desired, provider)
            calls = sum(1 for c in plan.changes if c.execution == "api")
            started = time.perf_counter()
            workflow.apply_plan(
                plan, provider, store, actor="bench", allow_destructive=True, manual="attested"
            )
            wall = time.perf_counter() - started
        finally:
            store.close()
            provider.close()
        linked = len(tenant.snapshot().channels[LINE].members)
        if linked != changes:
            raise SystemExit(f"emulator has {linked} linked members, expected {changes}")
        bound = calls / rate * window
        return {
            "calls": calls,
            "wall": wall,
            "bound": bound,
            "ratio": wall / bound,
            "429": emulator.count(429),
            "requests": emulator.count(),
        }


def main() -> None:
    """Parse options, run, print the table and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=240)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{args.changes} member links at {args.rate} requests per {args.window:g} s "
        f"(the real API: per 60 s; scale {60 / args.window:g}x)"
    )
    print(
        f"{'run':>3}  {'calls':>6}  {'wall s':>7}  {'bound s':>7}  {'ratio':>6}  "
        f"{'429s':>4}  {'requests':>8}"
    )
    ratios = []
    for n in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            r = one_run(args.changes, args.rate, args.window, Path(tmp))
        ratios.append(r["ratio"])
        print(
            f"{n:>3}  {r['calls']:>6.0f}  {r['wall']:>7.2f}  {r['bound']:>7.2f}  "
            f"{r['ratio']:>6.3f}  {r['429']:>4.0f}  {r['requests']:>8.0f}"
        )
    median = statistics.median(ratios)
    verdict = "meets" if median <= 1.05 else "MISSES"
    print(f"median wall ÷ lower bound: {median:.3f} ({verdict} the target ≤ 1.05)")


if __name__ == "__main__":
    main()

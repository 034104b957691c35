"""Start-up: `lwr --version` and `lwr validate` of a small file against the floor, `python -c
"import yaml, jsonschema, click"` (what any tool built on those three pays before work).

Usage: python bench/startup_bench.py [N]   (default N = 30 rounds)

Each round runs the three commands one after the other, in a rotating order, so machine noise
hits all of them alike; medians of N are printed with the ratio to the floor. Target (issue
17): both within 1.5x of the floor. `python -X importtime -m reconciler --version` shows where
the rest goes; what lwr defers, and why, is listed in reconciler/cli/lazy.py.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from benchlib import LWR, print_machine, save, timed

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"


def commands() -> dict[str, list[str]]:
    """The floor and the two commands; validate runs without a tenant (LWR_TENANT unset)."""
    return {
        "floor": [sys.executable, "-c", "import yaml, jsonschema, click"],
        "lwr --version": [LWR, "--version"],
        "lwr validate": [LWR, "validate", str(EXAMPLE)],
    }


def main(rounds: int) -> None:
    print_machine()
    runs = commands()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    env = {"LWR_TENANT": "", "NO_COLOR": "1"}  # empty counts as unset: no tenant is read
    for i in range(rounds):
        for name in names[i % 3 :] + names[: i % 3]:
            times[name].append(timed(runs[name], env=env, ok=(0,)).seconds)
    floor = statistics.median(times["floor"])
    rows = []
    print(f"{'command':<16} {'median s':>9} {'ratio':>6}   ({rounds} rounds)")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rows.append({"command": name, "median_s": median, "ratio": median / floor})
        print(f"{name:<16} {median:>9.3f} {median / floor:>6.2f}")
    save("startup", rows)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

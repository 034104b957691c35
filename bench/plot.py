"""docs/performance.png: time against N (log-log) from bench/out/*.json.

Usage: python bench/plot.py   (after the benchmarks). matplotlib is optional
(`pip install -e '.[plot]'`): without it the plot is skipped with a note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchlib import OUT

TARGET = Path(__file__).resolve().parent.parent / "docs" / "performance.png"
SERIES = (
    ("plan", "plan_s", "lwr plan (whole process)"),
    ("plan", "parse_s", "bare YAML parse (whole process)"),
    ("apply", "total_s", "lwr apply of N member changes"),
    ("diff", "plan_s", "planner, in process"),
    ("diff", "deepdiff_s", "DeepDiff, in process"),
)


def main() -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, key, label in SERIES:
        path = OUT / f"{name}.json"
        if not path.exists():
            continue
        rows = json.loads(path.read_text())["rows"]
        ax.plot([r["n"] for r in rows], [r[key] for r in rows], marker="o", label=label)
    ns = [1_000, 1_000_000]
    ax.plot(
        ns, [0.0125 * n / 1000 for n in ns], linestyle=":", color="grey", label="linear (slope 1)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (members in the file / member changes)")
    ax.set_ylabel("seconds")
    ax.set_title("lwr: time against N")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(TARGET, dpi=110)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    sys.exit(main())

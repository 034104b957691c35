"""Instructions of `lwr apply` (and `lwr plan`) of apply_bench.py's scenario, by callgrind.

Usage: python bench/apply_instructions.py [N] [CHECKOUT ...]   (default: 10k and this checkout)

Wall time on a shared machine swings by ±25 %; the instruction count of the same process
moves by 0.1 %, so two checkouts (e.g. a `git worktree` of an older commit with its own
`make install`) are compared by it. Each CHECKOUT is precompiled
(`python -m compileall -q reconciler`, as an installed wheel is) and runs from its own
.venv on a fresh copy of one demo tenant (`tenant init --demo`, every tenth member listed)
and one desired file adding N members. Needs valgrind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import desired_file, directory, sizes

from reconciler.providers.local import demo_line_list

HERE = Path(__file__).resolve().parent.parent


def count(checkout: Path, work: Path, command: str) -> int:
    """Instructions of `python -m reconciler COMMAND work/d.yaml` from `checkout`."""
    run = work / command
    run.mkdir()
    shutil.copy(work / "tenant.db", run / "tenant.db")
    args = [str(run.parent / "d.yaml")] + (["--auto-approve"] if command == "apply" else [])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["LWR_TENANT"] = f"local:{run}/tenant.db"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={run}/callgrind.out",
            str(checkout / ".venv/bin/python"),
            "-m",
            "reconciler",
            command,
            *args,
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode not in (0, 2) or found is None:
        raise SystemExit(
            f"{checkout}: {command} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return int(found.group(1))


def main() -> None:
    args = sys.argv[1:]
    n = sizes([a for a in args if not Path(a).is_dir()] or ["10k"])[0]
    checkouts = [Path(a).resolve() for a in args if Path(a).is_dir()] or [HERE]
    members = n * 10 // 9 + 20  # as apply_bench.py: ~0.9 of them can be added
    everyone = directory(members)
    listed = demo_line_list(members)
    unlisted = [m for m in everyone if m not in set(listed)]
    print(f"{'checkout':<40} {'plan M':>9} {'apply M':>9}   (N = {n:,})")
    for checkout in checkouts:
        python = str(checkout / ".venv/bin/python")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([python, "-m", "compileall", "-q", "reconciler"], cwd=checkout, env=env)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            init = [python, "-m", "reconciler", "tenant", "init", "--demo"]
            subprocess.run(
                [*init, "--members", str(members)],
                cwd=checkout,
                env={**env, "LWR_TENANT": f"local:{work}/tenant.db"},
                check=True,
                capture_output=True,
            )
            desired_file(work / "d.yaml", listed + unlisted[:n])
            plan, apply = count(checkout, work, "plan"), count(checkout, work, "apply")
        print(f"{checkout!s:<40} {plan / 1e6:>9,.0f} {apply / 1e6:>9,.0f}", flush=True)


if __name__ == "__main__":
    main()

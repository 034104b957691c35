"""Start-up stays cheap: what `lwr --version` and `lwr validate` import, read from a real
process with `python -X importtime` (no timing here: bench/startup_bench.py measures; what is
deferred and why is listed in reconciler/cli/lazy.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
HEAVY = ("rich", "httpx", "psycopg", "sqlite3")
PLANNING = ("reconciler.workflow", "reconciler.planner", "reconciler.providers", "reconciler.store")


def imported(*args: str) -> set[str]:
    """Every module the `lwr` entry point imports to run `args`."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "from reconciler.cli import main; main()",
            *args,
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "LWR_TENANT"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


def test_version_imports_click_and_little_else() -> None:
    modules = imported("--version")
    assert loaded(modules, (*HEAVY, *PLANNING, "yaml", "jsonschema")) == []
    assert "click" in modules


def test_validate_imports_the_loader_not_the_planner() -> None:
    modules = imported("validate", str(EXAMPLE))
    assert loaded(modules, (*HEAVY, *PLANNING)) == []
    assert {"reconciler.desired", "jsonschema", "yaml"} <= modules

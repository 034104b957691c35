"""The shipped examples, the GitHub Actions recipe and the pre-commit hook actually work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.cli import cli, run
from reconciler.desired import load_desired
from reconciler.resources import load_schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
RECIPE = ROOT / "examples" / "github-actions" / "lwr.yml"


def test_the_promised_examples_are_there() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "company.yaml",
        "small-company.yaml",
        "sales-line-greeting.yaml",
        "all-members.yaml",
    } <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_each_example_validates_plans_applies_and_converges_on_a_demo_tenant(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"local:{tmp_path}/tenant.db"
    assert run(["tenant", "init", "--demo", "--tenant", uri]) == 0
    assert run(["validate", str(example), "--tenant", uri]) == 0
    # The shipped policies pass (a deny would be exit 3) and the plan has work to do.
    assert run(["plan", str(example), "--tenant", uri, "--detailed-exitcode"]) == 2
    assert run(["apply", str(example), "--tenant", uri, "--auto-approve"]) == 0
    assert run(["drift", str(example), "--tenant", uri]) == 0
    out, err = capsys.readouterr()
    assert "Policy [" not in out and "Traceback" not in err
    assert load_desired(example).document is not None


def test_examples_point_editors_at_the_schema() -> None:
    for example in EXAMPLES:
        first = example.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/desired-state.schema.json"


def test_the_desired_state_schema_explains_every_key_to_editors() -> None:
    schema = load_schema("desired-state.schema.json")
    assert schema["$id"].endswith("desired-state.schema.json") and schema["title"]

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                assert isinstance(sub, dict) and "description" in sub, f"{path}.{key}"
            for key, sub in node.items():
                if key not in ("if", "then", "else", "not"):  # conditions, not keys to hover
                    walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "$")


# --- the GitHub Actions recipe ----------------------------------------------------------------


def lwr_invocations(script: str) -> list[list[str]]:
    """Each `lwr COMMAND …` line of a shell script, continuation lines joined (not `lwr
    --version`)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [
        shlex.split(line.strip())[1:]
        for line in joined.splitlines()
        if line.strip().startswith("lwr ") and not line.strip().startswith("lwr -")
    ]


def test_the_recipe_uses_only_commands_and_options_lwr_has() -> None:
    workflow = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert {"pull_request", "push"} <= set(triggers)
    scripts = [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]
    calls = [argv for script in scripts for argv in lwr_invocations(script)]
    used = {argv[0] for argv in calls}
    assert {"validate", "plan", "show-plan", "apply", "audit"} <= used
    assert isinstance(cli, click.Group)
    for argv in calls:
        command = cli.commands[argv[0]]
        known = {opt for param in command.params for opt in param.opts}
        for word in argv[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"lwr {argv[0]} has no {word}"
    plan_call = next(argv for argv in calls if argv[0] == "plan")
    assert {"--detailed-exitcode", "--policy-dir", "--out", "--markdown-dir"} <= set(plan_call)
    apply_call = next(argv for argv in calls if argv[0] == "apply")
    assert apply_call[1] == "plan.json"  # the reviewed saved plan, not the file


# --- the pre-commit hook ------------------------------------------------------------------------


def test_the_pre_commit_hook_runs_lwr_validate(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "lwr-validate" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("lineworks/company.yaml") and files.search("ops/lineworks/a.yml")
    assert not files.search("policies/team.yaml")
    entry = shlex.split(hook["entry"])
    exe = Path(sys.executable).parent / entry[0]
    env = {**os.environ, "NO_COLOR": "1"}
    ok = subprocess.run(
        [str(exe), *entry[1:], *map(str, EXAMPLES)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    enabeld: true\n",
        encoding="utf-8",
    )
    failing = subprocess.run(
        [str(exe), *entry[1:], str(bad)], capture_output=True, text=True, env=env, check=False
    )
    assert failing.returncode == 1 and f"{bad}:5:5" in failing.stderr

"""The GitHub Actions recipes (examples/github-actions/) can run on a fresh runner: they pass
a real workflow linter, install a pinned lwr from what exists, survive a no-op merge, call
only what lwr has, and keep one sticky comment per plan part (per tenant for a fleet)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_examples import lwr_invocations

from reconciler import __version__
from reconciler.cli import cli, run

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "examples" / "github-actions").glob("*.yml"))
SINGLE = ROOT / "examples" / "github-actions" / "lwr.yml"
FLEET = ROOT / "examples" / "github-actions" / "lwr-fleet.yml"
HARNESS = Path(__file__).resolve().parent / "recipes" / "github_script.js"


def load(recipe: Path) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    return workflow


def steps(recipe: Path) -> list[dict[str, Any]]:
    return [step for job in load(recipe)["jobs"].values() for step in job["steps"]]


def step(recipe: Path, starts: str) -> dict[str, Any]:
    return next(s for s in steps(recipe) if s.get("name", "").startswith(starts))


def test_there_is_a_single_file_and_a_fleet_recipe() -> None:
    assert RECIPES == [FLEET, SINGLE]


def test_every_recipe_passes_the_github_workflow_schema_linter(tmp_path: Path) -> None:
    """check-jsonschema with the GitHub workflow schema it ships (no network)."""
    linter = Path(sys.executable).parent / "check-jsonschema"
    argv = [str(linter), "--builtin-schema", "vendor.github-workflows"]
    ok = subprocess.run([*argv, *map(str, RECIPES)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # It is a real check: a step with both `uses` and `run`, and a misspelt key, fail it.
    bad = tmp_path / "bad.yml"
    workflow = load(SINGLE)
    workflow["jobs"]["plan"]["steps"][0]["run"] = "echo both"
    workflow["jobs"]["apply"]["runs_on"] = workflow["jobs"]["apply"].pop("runs-on")
    bad.write_text(yaml.safe_dump(workflow), encoding="utf-8")
    failing = subprocess.run([*argv, str(bad)], capture_output=True, text=True, check=False)
    assert failing.returncode == 1


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_the_recipe_installs_the_pinned_version_from_an_index_or_git(recipe: Path) -> None:
    workflow = load(recipe)
    assert workflow["env"]["LWR_VERSION"] == __version__  # bump it with the release
    installs = [s["run"] for s in steps(recipe) if s.get("name", "").startswith("Install lwr")]
    assert len(installs) == 2  # the plan job and the apply job
    for script in installs:
        assert '"lineworks-reconciler==$LWR_VERSION"' in script and "--index-url" in script
        assert "git+$LWR_GIT_URL@${LWR_GIT_REF:-v$LWR_VERSION}" in script
        assert "pip install lineworks-reconciler\n" not in script + "\n"
    assert "pip install lineworks-reconciler\n" not in recipe.read_text(encoding="utf-8")


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_a_no_op_merge_still_finds_the_plan_it_applies(recipe: Path) -> None:
    """Plan exit 0 (nothing to do) keeps the artifact too: the apply job downloads it."""
    keep = step(recipe, "Keep the reviewed plan")
    assert "exitcode == '0'" in keep["if"] and "exitcode == '2'" in keep["if"]
    name = keep["with"]["name"]
    fetch = step(recipe, "Fetch the plan")
    assert f"--name {name}" in fetch["run"]


def test_a_saved_plan_of_no_changes_applies_as_nothing(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the single-file recipe's apply job does after a no-op merge."""
    desired = demo / "company.yaml"
    assert run(["export", "--out", str(desired)]) == 0
    argv = ["plan", str(desired), "--out", "plan.json", "--detailed-exitcode"]
    assert run(argv) == 0
    assert run(["show-plan", "plan.json", "--tenant", f"local:{demo}/tenant.db"]) == 0
    capsys.readouterr()
    assert run(["apply", "plan.json", "--auto-approve", "--manual=skip"]) == 0
    assert "Apply complete" not in capsys.readouterr().out


def test_the_fleet_recipe_uses_only_commands_and_options_lwr_has() -> None:
    scripts = [s["run"] for s in steps(FLEET) if "run" in s]
    calls = [argv for script in scripts for argv in lwr_invocations(script)]
    assert {"validate", "plan", "apply", "audit"} <= {argv[0] for argv in calls}
    for argv in calls:
        command = cli.commands[argv[0]]  # type: ignore[attr-defined]
        known = {opt for param in command.params for opt in param.opts}
        for word in argv[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"lwr {argv[0]} has no {word}"
    plan_call = next(argv for argv in calls if argv[0] == "plan" and "--out" in argv)
    assert plan_call[plan_call.index("--out") + 1] == "plans"
    apply_call = next(argv for argv in calls if argv[0] == "apply")
    assert apply_call[1] == "plans"  # the reviewed plan directory, not the desired files


# --- sticky comments, run with node against a pretend pull request -------------------------

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


def comment_script(recipe: Path) -> str:
    script: str = step(recipe, "Comment the plan")["with"]["script"]
    return script


def post(recipe: Path, cwd: Path, state: Path, **env: str) -> list[list[Any]]:
    """Run the recipe's comment step in `cwd`; the calls it made on the pull request."""
    script = cwd / "script.js"
    script.write_text(comment_script(recipe), encoding="utf-8")
    done = subprocess.run(
        ["node", str(HARNESS), str(script), str(state)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    calls: list[list[Any]] = json.loads(done.stdout)
    return calls


def comments(state: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(state.read_text(encoding="utf-8"))["comments"]
    return found


@needs_node
def test_the_single_file_recipe_keeps_one_comment_per_part(tmp_path: Path) -> None:
    state = tmp_path / "comments.json"
    human = {"id": 1, "body": "LGTM <!-- lwr-plan:lineworks/company.yaml:part-1 -->"}
    state.write_text(
        json.dumps({"comments": [{**human, "user": {"type": "User"}}], "next": 100}),
        encoding="utf-8",
    )
    parts = tmp_path / "plan-md"
    parts.mkdir()
    for i in (1, 2, 3):
        (parts / f"part-{i}.md").write_text(f"### lwr plan (part {i} of 3)\n", encoding="utf-8")
    env = {"DESIRED": "lineworks/company.yaml", "EXITCODE": "2"}
    assert post(SINGLE, tmp_path, state, **env) == [
        ["create", 100],
        ["create", 101],
        ["create", 102],
    ]
    # The next push: the plan shrank to one part. The first comment is edited, the others go;
    # a person's comment is never touched, marker or not.
    for i in (2, 3):
        (parts / f"part-{i}.md").unlink()
    (parts / "part-1.md").write_text("### lwr plan, pushed again\n", encoding="utf-8")
    assert post(SINGLE, tmp_path, state, **env) == [
        ["update", 100],
        ["delete", 101],
        ["delete", 102],
    ]
    left = comments(state)
    assert [c["id"] for c in left] == [1, 100]
    assert left[1]["body"].startswith("### lwr plan, pushed again")
    # A plan that failed before writing markdown says so in the same comment.
    (parts / "part-1.md").unlink()
    assert post(SINGLE, tmp_path, state, DESIRED=env["DESIRED"], EXITCODE="1") == [["update", 100]]
    assert "exited 1" in comments(state)[1]["body"]


@needs_node
def test_the_fleet_recipe_keeps_one_comment_for_the_summary_and_one_per_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_TENANT", raising=False)
    monkeypatch.delenv("LWR_STATE", raising=False)
    template = f"local:{tmp_path}/tenants/{{tenant}}.db"
    for name in ("a.example", "b.example"):
        uri = template.replace("{tenant}", name)
        assert run(["tenant", "init", "--demo", "--domain", name, "--tenant", uri]) == 0
    assert run(["export", "--tenant", template, "--out", "lineworks"]) == 0
    desired = tmp_path / "lineworks" / "b.example.yaml"
    text = desired.read_text(encoding="utf-8")
    changed = text.replace("restrict_file_transfer: false", "restrict_file_transfer: true", 1)
    desired.write_text(changed, encoding="utf-8")
    argv = [
        "plan",
        "lineworks",
        "--tenant",
        template,
        "--out",
        "plans",
        "--markdown-dir",
        "plan-md",
    ]
    assert run(argv) == 0
    state = tmp_path / "comments.json"
    state.write_text(json.dumps({"comments": [], "next": 10}), encoding="utf-8")
    assert post(FLEET, tmp_path, state) == [["create", 10], ["create", 11]]  # summary, b
    bodies = [c["body"] for c in comments(state)]
    assert "lwr-fleet:summary:part-1" in bodies[0] and "| `b.example` |" in bodies[0]
    assert "lwr-fleet:tenant:b.example:part-1" in bodies[1] and "restrict" in bodies[1]
    # b is put back in sync: its comment says so, no new comment is added.
    desired.write_text(text, encoding="utf-8")
    assert run(argv) == 0
    assert post(FLEET, tmp_path, state) == [["update", 10], ["update", 11]]
    assert "In sync now" in comments(state)[1]["body"]


# --- the merge's "was it made from the merged file" check, run with bash and jq -------------

needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")


def run_step(recipe: Path, starts: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one `run:` step of the recipe with bash -e, as GitHub does, lwr on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-e", "-c", step(recipe, starts)["run"]],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "NO_COLOR": "1", **env},
        check=False,
        timeout=120,
    )


def edit(desired: Path, switch: str) -> None:
    """Turn `switch` on in the desired file."""
    text = desired.read_text(encoding="utf-8")
    desired.write_text(text.replace(f"{switch}: false", f"{switch}: true", 1), encoding="utf-8")


@needs_jq
def test_the_fleet_merge_refuses_plans_whose_file_changed_after_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    template = f"local:{tmp_path}/tenants/{{tenant}}.db"
    monkeypatch.setenv("LWR_TENANT", template)
    for name in ("a.example", "b.example"):
        uri = template.replace("{tenant}", name)
        assert run(["tenant", "init", "--demo", "--domain", name, "--tenant", uri]) == 0
    assert run(["export", "--out", "lineworks"]) == 0
    for name in ("a.example", "b.example"):
        edit(tmp_path / "lineworks" / f"{name}.yaml", "restrict_file_transfer")
    assert run(["plan", "lineworks", "--out", "plans"]) == 0
    env = {"DESIRED_DIR": "lineworks", "PARALLEL": "2"}
    checked = run_step(FLEET, "Check each plan was made", tmp_path, **env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Another merge changed b's file after its plan was reviewed: the merge stops.
    edit(tmp_path / "lineworks" / "b.example.yaml", "auto_grant_new_members")
    moved = run_step(FLEET, "Check each plan was made", tmp_path, **env)
    assert moved.returncode == 3
    assert "b.example.yaml" in moved.stdout and "a.example.yaml" not in moved.stdout

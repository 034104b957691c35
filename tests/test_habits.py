"""The habits people bring from Terraform and friends, through the real CLI: single-dash flags,
saved plans told by their content, $LWR_TENANT everywhere, `-` for stdin, help on every
option, shell completion, plurals, and an editor hint that resolves where the file lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from builders import seed_demo

from reconciler.cli import cli, run
from reconciler.resources import load_schema

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
LWR = str(Path(sys.executable).parent / "lwr")


def lwr(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`lwr` as a user runs it: a real process, its stdin given or closed."""
    return subprocess.run(
        [LWR, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=cwd,
        check=False,
    )


# --- Terraform's single dash -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("-detailed-exitcode", "--detailed-exitcode"),
        ("-out=plan.json", "--out=plan.json"),
        ("-auto-approve", "--auto-approve"),
    ],
)
def test_a_single_dash_terraform_flag_gets_a_did_you_mean(
    demo: Path, capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    command = "apply" if "approve" in typed else "plan"
    assert run([command, str(EXAMPLE), typed]) == 1
    err = capsys.readouterr().err
    assert f"did you mean {meant}?" in err, err
    assert "Traceback" not in err


# --- saved plans by content ---------------------------------------------------------------------


def test_a_desired_file_written_as_json_validates_plans_and_applies(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = demo_state / "company.json"
    desired.write_text(
        json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), ensure_ascii=False),
        encoding="utf-8",
    )
    assert run(["validate", str(desired)]) == 0
    assert run(["apply", str(desired), "--auto-approve"]) == 0
    assert "Apply complete: 7 changes applied" in capsys.readouterr().out
    assert run(["plan", str(desired), "--detailed-exitcode"]) == 0


def test_planning_a_saved_plan_says_what_it_is(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", str(EXAMPLE), "--out", "saved.txt"]) == 0  # any name: told by content
    capsys.readouterr()
    for command in ("plan", "validate"):
        assert run([command, "saved.txt"]) == 1
        err = capsys.readouterr().err
        assert "is a saved plan" in err and "lwr show-plan" in err and "lwr apply" in err, err
        assert "problem" not in err  # not a dozen schema errors
    piped = lwr("plan", "-", stdin=(demo / "saved.txt").read_text(encoding="utf-8"), cwd=demo)
    assert piped.returncode == 1 and "<stdin> is a saved plan" in piped.stderr, piped.stderr
    assert "save it to a FILE" in piped.stderr  # show-plan and apply read plans from files
    assert run(["show-plan", "saved.txt"]) == 0
    assert run(["apply", "saved.txt", "--auto-approve"]) == 0
    assert "Apply complete: 7 changes applied" in capsys.readouterr().out


# --- $LWR_TENANT and stdin -----------------------------------------------------------------------


def test_validate_checks_the_directory_of_lwr_tenant(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = demo / "m.yaml"
    stranger.write_text(
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        "  line:\n    members:\n      include:\n        - zed@example.co.jp\n",
        encoding="utf-8",
    )
    assert run(["validate", str(stranger)]) == 1  # LWR_TENANT is set by the fixture
    assert "zed@example.co.jp" in capsys.readouterr().err


def test_a_dash_reads_the_desired_file_from_stdin(demo: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    checked = lwr("validate", "-", stdin=text, cwd=demo)
    assert checked.returncode == 0 and "<stdin>: valid" in checked.stdout, checked.stderr
    planned = lwr("plan", "-", "--detailed-exitcode", stdin=text, cwd=demo)
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 7 changes" in planned.stdout and "desired state <stdin>" in planned.stdout
    asked = lwr("apply", "-", stdin=text, cwd=demo)
    assert asked.returncode == 1
    assert "stdin" in asked.stderr and "--auto-approve" in asked.stderr, asked.stderr
    applied = lwr("apply", "-", "--auto-approve", stdin=text, cwd=demo)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 7 changes applied" in applied.stdout


# --- help, completion ----------------------------------------------------------------------------


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


def test_every_option_of_every_command_has_help_text() -> None:
    missing = []
    for path in _commands(cli):
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            sub = command.get_command(click.Context(command), name)
            assert sub is not None
            command = sub
        assert command.help, f"lwr {' '.join(path)} has no help"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"lwr {' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_help_never_sends_you_to_the_help_you_are_reading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("plan", "apply", "validate", "drift", "export"):
        assert run([command, "--help"]) == 0
        shown = " ".join(capsys.readouterr().out.split())  # as read, not as wrapped
        assert f"lwr {command} --help" not in shown


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(shell: str) -> None:
    done = lwr("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "_LWR_COMPLETE" in done.stdout


def test_completion_completes_a_command_name() -> None:
    done = subprocess.run(
        [LWR],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "_LWR_COMPLETE": "bash_complete",
            "COMP_WORDS": "lwr sho",
            "COMP_CWORD": "1",
        },
        check=False,
    )
    assert "show" in done.stdout and "show-plan" in done.stdout, done.stdout


# --- plurals -----------------------------------------------------------------------------------


def test_one_change_is_one_change_everywhere(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["export", "--out", "one.yaml"]) == 0
    one = demo_state / "one.yaml"
    exported = one.read_text(encoding="utf-8")
    one.write_text(
        exported.replace("restrict_file_transfer: false", "restrict_file_transfer: true", 1),
        encoding="utf-8",
    )
    capsys.readouterr()
    assert run(["plan", str(one), "--out", "one.json"]) == 0
    out = capsys.readouterr()
    assert "Plan: 1 change " in out.out and "(1 change)" in out.err, out
    assert run(["apply", "one.json", "--auto-approve"]) == 0
    assert "Apply complete: 1 change applied" in capsys.readouterr().out


def test_the_fleet_summary_counts_changes_not_tenants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkey_env = {"LWR_TENANT": f"local:{tmp_path}/tenants/{{tenant}}.db"}
    (tmp_path / "desired").mkdir()
    for i in range(2):
        domain = f"c{i}.example.co.jp"
        seed_demo(monkey_env["LWR_TENANT"].replace("{tenant}", domain), domain)
        text = EXAMPLE.read_text(encoding="utf-8").replace("example.co.jp", domain)
        (tmp_path / "desired" / f"{domain}.yaml").write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = run(["plan", str(tmp_path / "desired"), "--tenant", monkey_env["LWR_TENANT"]])
    assert code == 0
    out = capsys.readouterr().out
    assert "2 tenants: 2 with changes; 14 changes in all" in out, out


# --- the schema and editor hints -----------------------------------------------------------------


def test_lwr_schema_prints_and_writes_the_desired_state_schema(tmp_path: Path) -> None:
    printed = lwr("schema", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == load_schema("desired-state.schema.json")
    (tmp_path / "s").mkdir()
    written = lwr("schema", "--out", "s/desired.schema.json", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    saved = json.loads((tmp_path / "s" / "desired.schema.json").read_text(encoding="utf-8"))
    assert saved == load_schema("desired-state.schema.json")


def test_export_hints_at_a_schema_that_resolves_where_the_file_lands(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "repo" / "tenants").mkdir(parents=True)
    assert (
        run(["export", "--out", "repo/tenants/acme.yaml", "--schema-out", "repo/schema.json"]) == 0
    )
    exported = (demo / "repo" / "tenants" / "acme.yaml").read_text(encoding="utf-8")
    first = exported.splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema.json"
    target = (demo / "repo" / "tenants" / first.split("$schema=")[1]).resolve()
    schema = json.loads(target.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(exported), schema)
    assert "lineworks-reconciler.dev" not in exported
    capsys.readouterr()
    assert run(["export"]) == 0  # stdout: no file to point from, so no hint that cannot resolve
    assert "$schema=https://" not in capsys.readouterr().out

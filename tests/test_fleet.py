"""`lwr plan DIR` / `lwr apply DIR`: many tenants, one desired file each (reconciler.fleet)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from builders import seed_demo

from reconciler.cli import run

DOMAINS = ("d1.example", "d2.example", "d3.example")


def tenant_uri(root: Path, domain: str) -> str:
    return f"local:{root}/tenants/{domain}.db"


def export(root: Path, domain: str) -> str:
    out = root / f"{domain}.export.yaml"
    assert run(["export", "--tenant", tenant_uri(root, domain), "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three demo tenants; desired/ holds: d1 in sync, d2 with one change (file restriction
    on), d3 in sync but sent with `target:` to d1 (wrong tenant), and a broken YAML file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_TENANT", raising=False)
    monkeypatch.delenv("LWR_STATE", raising=False)
    for domain in DOMAINS:
        seed_demo(tenant_uri(tmp_path, domain), domain)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "a-d1.yaml").write_text(export(tmp_path, "d1.example"), encoding="utf-8")
    changed = export(tmp_path, "d2.example").replace(
        "restrict_file_transfer: false", "restrict_file_transfer: true", 1
    )
    (desired / "b-d2.yml").write_text(changed, encoding="utf-8")
    target = f"target: {tenant_uri(tmp_path, 'd1.example')}\n"
    wrong = export(tmp_path, "d3.example").replace(
        "tenant: d3.example\n", f"tenant: d3.example\n{target}"
    )
    (desired / "c-d3.yaml").write_text(wrong, encoding="utf-8")
    (desired / "d-bad.yaml").write_text("version: 1\ntenant: [unclosed\n", encoding="utf-8")
    (desired / "notes.txt").write_text("not a desired file", encoding="utf-8")
    return tmp_path


def template(root: Path) -> str:
    return f"local:{root}/tenants/{{tenant}}.db"


def rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by file name: [tenant, file, changes, destructive, result]."""
    table: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[1].endswith((".yaml", ".yml")):
            table[cells[1]] = cells
    return table


def only(root: Path, *names: str) -> Path:
    """desired/ with only `names` kept."""
    for path in (root / "desired").iterdir():
        if path.name not in names:
            path.unlink()
    return root / "desired"


def test_plan_dir_summary_and_aggregate_exit_code_for_mixed_results(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["plan", str(fleet / "desired"), "--tenant", template(fleet), "--detailed-exitcode"])
    out = capsys.readouterr().out
    assert code == 1  # the bad YAML file errored: 1 wins over 3 and 2
    table = rows(out)
    assert set(table) == {"a-d1.yaml", "b-d2.yml", "c-d3.yaml", "d-bad.yaml"}  # notes.txt not
    assert table["a-d1.yaml"] == ["d1.example", "a-d1.yaml", "0", "0", "in sync"]
    assert table["b-d2.yml"] == ["d2.example", "b-d2.yml", "1", "0", "changes"]
    assert table["c-d3.yaml"][4] == "refused"
    assert table["d-bad.yaml"][4] == "error"
    assert "restrict file transfer" in out  # d2's plan is shown above the table
    assert "c-d3.yaml: " in out and "d1.example" in out  # why d3 was refused


@pytest.mark.parametrize(
    ("keep", "detailed", "expected"),
    [
        (("a-d1.yaml", "b-d2.yml", "c-d3.yaml"), True, 3),  # refused wins over changes
        (("a-d1.yaml", "b-d2.yml"), True, 2),
        (("a-d1.yaml", "b-d2.yml"), False, 0),
        (("a-d1.yaml",), True, 0),
    ],
)
def test_plan_dir_exit_codes(
    fleet: Path, keep: tuple[str, ...], detailed: bool, expected: int
) -> None:
    argv = ["plan", str(only(fleet, *keep)), "--tenant", template(fleet)]
    assert run(argv + (["--detailed-exitcode"] if detailed else [])) == expected


def test_a_file_without_target_needs_a_tenant_placeholder(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = only(fleet, "a-d1.yaml", "c-d3.yaml")
    assert run(["plan", str(desired), "--tenant", tenant_uri(fleet, "d1.example")]) == 1
    out = capsys.readouterr().out
    table = rows(out)
    assert table["a-d1.yaml"][4] == "error"
    assert "{tenant}" in out
    assert table["c-d3.yaml"][4] == "refused"  # its target: is used: still the wrong tenant


def test_fail_fast_stops_starting_tenants(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fleet / "desired" / "d-bad.yaml").rename(fleet / "desired" / "0-bad.yaml")
    argv = ["plan", str(fleet / "desired"), "--tenant", template(fleet)]
    assert run([*argv, "--fail-fast"]) == 1
    table = rows(capsys.readouterr().out)
    assert table["0-bad.yaml"][4] == "error"
    assert {table[name][4] for name in ("a-d1.yaml", "b-d2.yml", "c-d3.yaml")} == {"skipped"}
    assert run(argv) == 1  # without --fail-fast every tenant runs
    table = rows(capsys.readouterr().out)
    assert table["a-d1.yaml"][4] == "in sync" and table["b-d2.yml"][4] == "changes"


def test_parallel_gives_the_same_results(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", str(fleet / "desired"), "--tenant", template(fleet), "--format", "json"]
    results = []
    for parallel in ("1", "2"):
        assert run([*argv, "--parallel", parallel]) == 1
        data = json.loads(capsys.readouterr().out)
        results.append(
            [
                (t["file"], t["tenant"], t["result"], t["changes"], t["exit_code"])
                for t in data["tenants"]
            ]
        )
    assert results[0] == results[1]
    assert [r[2] for r in results[0]] == ["in sync", "changes", "refused", "error"]


def test_markdown_gives_one_collapsed_section_per_tenant(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = only(fleet, "a-d1.yaml", "b-d2.yml", "c-d3.yaml")
    assert run(["plan", str(desired), "--tenant", template(fleet), "--format", "markdown"]) == 3
    out = capsys.readouterr().out
    assert out.count("<details>") == 3 and out.count("</details>") == 3
    assert "<summary>d2.example (b-d2.yml): changes</summary>" in out
    assert "| `d1.example` | `a-d1.yaml` | 0 | 0 | in sync |" in out
    assert "### lwr plan for `d2.example`" in out  # the tenant's own plan, inside its section


def test_apply_dir_needs_auto_approve_then_applies_each_tenant(
    fleet: Path, state_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LWR_STATE", state_uri)  # one store for every tenant
    desired = only(fleet, "a-d1.yaml", "b-d2.yml")
    argv = ["apply", str(desired), "--tenant", template(fleet)]
    assert run(argv) == 1
    assert "--auto-approve" in capsys.readouterr().err
    assert run([*argv, "--auto-approve", "--parallel", "2"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["b-d2.yml"][4] == "applied" and table["a-d1.yaml"][4] == "in sync"
    assert run(["plan", str(desired), "--tenant", template(fleet), "--detailed-exitcode"]) == 0
    assert run(["audit", "--tenant", tenant_uri(fleet, "d2.example")]) == 0
    audit = capsys.readouterr().out
    assert "No applied changes recorded" not in audit and "line" in audit
    assert run(["audit", "--verify"]) == 0 and run(["lock", "list"]) == 0
    assert "No locks held" in capsys.readouterr().out


def test_apply_dir_refuses_destructive_changes_without_the_flag(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = only(fleet, "a-d1.yaml", "b-d2.yml")
    (desired / "a-d1.yaml").write_text(  # turning a channel off is destructive
        "version: 1\ntenant: d1.example\nexternal_messaging:\n  line:\n    enabled: false\n",
        encoding="utf-8",
    )
    argv = ["apply", str(desired), "--tenant", template(fleet), "--auto-approve"]
    assert run(argv) == 3
    table = rows(capsys.readouterr().out)
    assert table["a-d1.yaml"][3:] == ["1", "refused"]
    assert table["b-d2.yml"][4] == "applied"  # the other tenant is not held back
    assert run([*argv, "--allow-destructive"]) == 0
    assert rows(capsys.readouterr().out)["a-d1.yaml"][4] == "applied"


def test_apply_dir_settles_a_killed_run_even_with_nothing_to_apply(
    fleet: Path, state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import closing

    from reconciler.actions import Action, Change, change_id
    from reconciler.model import ChannelName
    from reconciler.store import open_store

    desired = only(fleet, "a-d1.yaml")  # d1 is in sync
    key = f"local:{(fleet / 'tenants' / 'd1.example.db').resolve()}"
    # A run that died after the tenant write and before the journal said done: the change
    # (LINE is on) holds on the tenant, the journal still says `started`.
    done_on_tenant = Change(
        change_id(Action.ENABLE_CHANNEL, ChannelName.LINE),
        Action.ENABLE_CHANNEL,
        ChannelName.LINE,
        None,
        False,
        True,
    )
    with closing(open_store(state_uri, key)) as store:
        killed = store.begin_run(key, "f" * 64, "ci@runner")
        store.mark_started(killed.run_id, [done_on_tenant])
    assert (
        run(
            [
                "apply",
                str(desired),
                "--tenant",
                template(fleet),
                "--auto-approve",
                "--state",
                state_uri,
            ]
        )
        == 0
    )
    assert "recorded 1 change of the interrupted run" in capsys.readouterr().out
    with closing(open_store(state_uri, key)) as store:
        (entry,) = store.audit_entries(tenant_key=key)
    assert (entry.change_id, entry.result) == ("line/enable_channel", "recovered")


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_two_files_for_one_tenant_are_both_refused_before_anything_runs(
    fleet: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = only(fleet, "a-d1.yaml", "b-d2.yml")
    twin = (desired / "b-d2.yml").read_text(encoding="utf-8")
    (desired / "c-d2-again.yaml").write_text(
        twin.replace(  # the same tenant, other intent
            "restrict_file_transfer: true", "restrict_file_transfer: false", 1
        ),
        encoding="utf-8",
    )
    extra = ["--auto-approve"] if command == "apply" else []
    assert run([command, str(desired), "--tenant", template(fleet), *extra]) == 1
    out = capsys.readouterr().out
    table = rows(out)
    assert table["b-d2.yml"][4] == "error" and table["c-d2-again.yaml"][4] == "error"
    assert table["a-d1.yaml"][4] == "in sync"  # other tenants still run
    assert "one desired file per tenant" in out and "b-d2.yml, c-d2-again.yaml" in out
    assert "restrict_file_transfer: false" in export(fleet, "d2.example")  # untouched

"""Fleets reviewed like single files: `plan DIR --out PLANDIR`, `apply PLANDIR`, `drift DIR`,
`validate DIR`, `export --out DIR`, on 50 local tenants of five kinds (reconciler.plandir,
reconciler.fleet_runs).

The tenants are built once for the module and copied for each test (a copy is a fleet of its
own: tenant identities are resolved paths).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import run

N = 50
#: i % 5 → what the desired file of tenant i does.
KINDS = ("sync", "change", "stale", "deny", "fail")
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def domain(i: int) -> str:
    return f"t{i:02d}.example"


def kind(i: int) -> str:
    return KINDS[i % len(KINDS)]


def template(root: Path) -> str:
    return f"local:{root}/tenants/{{tenant}}.db"


def tenant_uri(root: Path, i: int) -> str:
    return f"local:{root}/tenants/{domain(i)}.db"


def desired_for(exported: str, what: str) -> str:
    if what in ("change", "stale"):
        return exported.replace("restrict_file_transfer: false", "restrict_file_transfer: true", 1)
    if what == "deny":  # the shipped rule greeting-has-message denies an empty greeting
        return exported.replace("greeting:\n      enabled: false", "greeting:\n      enabled: true")
    return exported


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 demo tenants and desired/ with one file each; the tenants of kind "fail" are gone
    (their files plan against a tenant that is not there)."""
    root = tmp_path_factory.mktemp("fleet50")
    saved = {k: os.environ.pop(k, None) for k in ("LWR_TENANT", "LWR_STATE")}
    try:
        desired = root / "desired"
        desired.mkdir()
        for i in range(N):
            uri = tenant_uri(root, i)
            assert run(["tenant", "init", "--demo", "--domain", domain(i), "--tenant", uri]) == 0
            out = root / "export.yaml"
            assert run(["export", "--tenant", uri, "--out", str(out)]) == 0
            text = desired_for(out.read_text(encoding="utf-8"), kind(i))
            (desired / f"{domain(i)}.yaml").write_text(text, encoding="utf-8")
            if kind(i) == "fail":
                (root / "tenants" / f"{domain(i)}.db").unlink()
        (root / "export.yaml").unlink()
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value
    return root


@pytest.fixture
def fleet(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the 50 tenants and their desired files."""
    root = tmp_path / "fleet"
    shutil.copytree(built, root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("LWR_TENANT", raising=False)
    monkeypatch.delenv("LWR_STATE", raising=False)
    yield root


def rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by tenant: [tenant, file, changes, destructive, result]."""
    table: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[0].endswith(".example"):
            table[cells[0]] = cells
    return table


def results(out: str) -> dict[str, str]:
    return {tenant: cells[4] for tenant, cells in rows(out).items()}


def of_kind(*kinds: str) -> set[str]:
    return {domain(i) for i in range(N) if kind(i) in kinds}


def join(root: Path, i: int) -> None:
    """A new hire on tenant i: its directory changes, so a plan made before is stale."""
    assert run(["tenant", "join", f"new@{domain(i)}", "--tenant", tenant_uri(root, i)]) == 0


def first_ten(root: Path) -> None:
    """desired/ with only t00…t09 (two of each kind), for the tests of one check each."""
    for path in (root / "desired").iterdir():
        if int(path.name[1:3]) >= 10:
            path.unlink()


def plan_dir(root: Path, *extra: str) -> int:
    argv = ["plan", str(root / "desired"), "--tenant", template(root), "--out", "plans"]
    return run([*argv, "--parallel", "2", *extra])


def apply_dir(root: Path, plans: str = "plans", *extra: str) -> int:
    argv = ["apply", plans, "--tenant", template(root), "--auto-approve", "--parallel", "2"]
    return run([*argv, *extra])


def file_restriction(root: Path, i: int) -> bool:
    out = root / "check.yaml"
    assert run(["export", "--tenant", tenant_uri(root, i), "--out", str(out)]) == 0
    return "restrict_file_transfer: true" in out.read_text(encoding="utf-8")


# --- plan DIR --out PLANDIR ------------------------------------------------------------------


def test_plan_dir_out_saves_one_plan_per_tenant_with_changes_and_an_index(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan_dir(fleet, "--detailed-exitcode") == 1  # the missing tenants errored
    captured = capsys.readouterr()
    table = results(captured.out)
    assert len(table) == N
    assert {t for t, r in table.items() if r == "changes"} == of_kind("change", "stale")
    assert {t for t, r in table.items() if r == "refused"} == of_kind("deny")
    assert {t for t, r in table.items() if r == "error"} == of_kind("fail")
    assert "Saved 20 plans and index.json to plans" in captured.err

    index = json.loads((fleet / "plans" / "index.json").read_text(encoding="utf-8"))
    schema = json.loads((SCHEMAS / "plan-index.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(index)
    assert {e["tenant"] for e in index["plans"]} == of_kind("change", "stale")
    assert sorted(p.name for p in (fleet / "plans").iterdir()) == sorted(
        ["index.json", *(e["plan"] for e in index["plans"])]
    )
    # Each is a saved plan as `plan FILE --out` writes it: show-plan reads it and, with the
    # tenant, says apply would accept it.
    entry = index["plans"][0]
    i = int(entry["tenant"][1:3])
    plan = fleet / "plans" / entry["plan"]
    assert json.loads(plan.read_text(encoding="utf-8"))["plan_digest"] == entry["plan_digest"]
    assert run(["show-plan", str(plan), "--tenant", tenant_uri(fleet, i)]) == 0


def test_a_fleet_in_sync_saves_an_empty_index_and_applying_it_does_nothing(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (fleet / "desired").iterdir():
        if int(path.name[1:3]) % 5 != 0:
            path.unlink()
    assert plan_dir(fleet, "--detailed-exitcode") == 0
    index = json.loads((fleet / "plans" / "index.json").read_text(encoding="utf-8"))
    assert index["plans"] == []
    capsys.readouterr()
    assert apply_dir(fleet) == 0  # a no-op merge: nothing to apply is not an error
    assert "Nothing to apply" in capsys.readouterr().out


# --- apply PLANDIR ---------------------------------------------------------------------------


def test_apply_plan_dir_applies_exactly_the_reviewed_plans_and_refuses_the_stale_ones(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_dir(fleet)
    stale = [i for i in range(N) if kind(i) == "stale"]
    for i in stale:
        join(fleet, i)
    # What is applied is the reviewed plans, not the desired files as they are now.
    for path in (fleet / "desired").iterdir():
        path.write_text("version: 1\ntenant: [broken\n", encoding="utf-8")
    capsys.readouterr()
    assert apply_dir(fleet) == 3  # refused wins over applied
    out = capsys.readouterr().out
    table = results(out)
    assert set(table) == of_kind("change", "stale")  # only what the index lists
    assert {t for t, r in table.items() if r == "applied"} == of_kind("change")
    assert {t for t, r in table.items() if r == "refused"} == of_kind("stale")
    assert "changed since the plan was made" in out
    assert all(file_restriction(fleet, i) for i in range(N) if kind(i) == "change")
    assert not any(file_restriction(fleet, i) for i in stale)
    assert not any(file_restriction(fleet, i) for i in range(N) if kind(i) in ("sync", "deny"))
    # A saved plan applies once, in a directory too.
    assert apply_dir(fleet) == 3
    table = results(capsys.readouterr().out)
    assert set(table.values()) == {"refused"}
    assert run(["audit", "--verify", "--tenant", tenant_uri(fleet, 1)]) == 0


def test_apply_plan_dir_needs_auto_approve(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first_ten(fleet)
    plan_dir(fleet)
    assert run(["apply", "plans", "--tenant", template(fleet)]) == 1
    assert "--auto-approve" in capsys.readouterr().err
    assert not file_restriction(fleet, 1)


def rewrite_index(root: Path, edit: object) -> None:
    path = root / "plans" / "index.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    assert callable(edit)
    edit(index["plans"])
    path.write_text(json.dumps(index), encoding="utf-8")


def outside(root: Path, entries: list[dict[str, object]]) -> None:
    """The first entry's plan moved out of PLANDIR, the index pointing at it there."""
    shutil.move(root / "plans" / str(entries[0]["plan"]), root / "elsewhere.plan.json")
    entries[0]["plan"] = "../elsewhere.plan.json"


def symlinked(root: Path, entries: list[dict[str, object]]) -> None:
    shutil.move(root / "plans" / str(entries[0]["plan"]), root / "elsewhere.plan.json")
    (root / "plans" / str(entries[0]["plan"])).symlink_to(root / "elsewhere.plan.json")


def other_digest(root: Path, entries: list[dict[str, object]]) -> None:
    entries[0]["plan_digest"] = "0" * 64


def relabelled(root: Path, entries: list[dict[str, object]]) -> None:
    """The index says the first plan is another tenant's."""
    entries[0]["tenant"] = str(entries[1]["tenant"])


def from_another_fleet(root: Path, entries: list[dict[str, object]]) -> None:
    """The first plan replaced by one made for the same domain in another fleet (another
    --tenant directory), its digests copied into the index: not a tenant of this fleet."""
    other = root / "other"
    shutil.copytree(root / "tenants", other / "tenants")
    shutil.copytree(root / "desired", other / "desired")
    name = str(entries[0]["plan"])
    desired = other / "desired" / name.replace(".plan.json", ".yaml")
    assert run(["plan", str(desired), "--tenant", f"local:{other}/tenants/{desired.stem}.db",
                "--out", str(root / "plans" / name)]) == 0  # fmt: skip
    saved = json.loads((root / "plans" / name).read_text(encoding="utf-8"))
    entries[0]["plan_digest"] = saved["plan_digest"]


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (outside, "not a file in"),
        (symlinked, "symlink"),
        (other_digest, "is not the plan the index lists (plan_digest"),
        (relabelled, "is not the plan the index lists (tenant"),
        (from_another_fleet, "the plan was made for"),
    ],
)
def test_the_index_decides_only_which_plans_each_is_checked_like_a_saved_plan(
    fleet: Path, tamper: object, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first_ten(fleet)
    plan_dir(fleet)
    index = json.loads((fleet / "plans" / "index.json").read_text(encoding="utf-8"))
    first, second = (int(str(e["tenant"])[1:3]) for e in index["plans"][:2])
    rewrite_index(fleet, lambda entries: tamper(fleet, entries))  # type: ignore[operator]
    capsys.readouterr()
    assert apply_dir(fleet) == 3
    out = capsys.readouterr().out
    table = results(out)
    assert table[domain(first)] == "refused" and says in out
    assert not file_restriction(fleet, first)
    assert table[domain(second)] == "applied"  # the others are not held back
    assert file_restriction(fleet, second)


def test_a_malformed_index_is_an_input_error(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_ten(fleet)
    plan_dir(fleet)
    rewrite_index(fleet, lambda entries: entries.append({"tenant": "x"}))
    capsys.readouterr()
    assert apply_dir(fleet) == 1
    err = capsys.readouterr().err
    assert "not a plan index" in err and "Traceback" not in err
    assert not file_restriction(fleet, 1)


# --- drift DIR, validate DIR, export --out DIR ----------------------------------------------


def test_drift_dir_reports_each_tenant_with_the_summary_and_an_aggregate_exit_code(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["drift", "desired", "--tenant", template(fleet), "--parallel", "2"]
    assert run(argv) == 1  # the missing tenants
    out = capsys.readouterr().out
    table = results(out)
    assert {t for t, r in table.items() if r == "drifted"} == of_kind("change", "stale")
    assert {t for t, r in table.items() if r == "in sync"} == of_kind("sync")
    assert {t for t, r in table.items() if r == "refused"} == of_kind("deny")
    assert {t for t, r in table.items() if r == "error"} == of_kind("fail")
    assert "restrict_file_transfer" in out or "restrict file transfer" in out
    assert run([*argv, "--markdown-dir", "drift-md"]) == 1  # the nightly job's comment parts
    capsys.readouterr()
    assert {p.name for p in (fleet / "drift-md" / "tenants").iterdir()} == of_kind(
        "change", "stale", "deny", "fail"
    )
    report = (fleet / "drift-md" / "tenants" / domain(1) / "part-1.md").read_text("utf-8")
    assert report.startswith(f"### lwr drift for `{domain(1)}`") and "**drifted**" in report
    summary = (fleet / "drift-md" / "summary" / "part-1.md").read_text("utf-8")
    assert summary.startswith(f"### lwr drift for {N} tenants")
    for path in (fleet / "desired").iterdir():  # only the drifted and the in-sync ones
        if kind(int(path.name[1:3])) not in ("sync", "change"):
            path.unlink()
    assert run([*argv, "--format", "json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 2
    drifted = [t for t in data["tenants"] if t["result"] == "drifted"]
    assert len(drifted) == 10 and all(t["drift"]["in_sync"] is False for t in drifted)
    for path in (fleet / "desired").iterdir():
        if kind(int(path.name[1:3])) != "sync":
            path.unlink()
    assert run(argv) == 0


def test_validate_dir_checks_every_file_offline_and_against_its_tenant(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = fleet / "desired" / "zz-broken.yaml"
    broken.write_text("version: 1\ntenant: [unclosed\n", encoding="utf-8")
    assert run(["validate", "desired"]) == 1
    out = capsys.readouterr().out
    assert out.count(" valid\n") == N and "zz-broken.yaml: " in out
    broken.unlink()
    assert run(["validate", "desired"]) == 0
    capsys.readouterr()
    assert run(["validate", "desired", "--tenant", template(fleet)]) == 1
    table = results(capsys.readouterr().out)
    assert {t for t, r in table.items() if r == "error"} == of_kind("fail")
    assert {t for t, r in table.items() if r == "valid"} == of_kind(
        "sync", "change", "stale", "deny"
    )


def test_export_out_dir_writes_every_tenant_of_the_template_and_plan_dir_finds_them_again(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fleet / "tenants" / f"{domain(1)}.db").rename(fleet / "tenants" / "renamed.db")
    assert run(["export", "--tenant", template(fleet), "--out", "exported"]) == 0
    table = results(capsys.readouterr().out)
    assert set(table) == of_kind("sync", "change", "stale", "deny")  # no state.db, no gone ones
    assert set(table.values()) == {"exported"}
    renamed = (fleet / "exported" / f"{domain(1)}.yaml").read_text(encoding="utf-8")
    assert "target: local:" in renamed and "renamed.db" in renamed
    argv = ["plan", "exported", "--tenant", template(fleet), "--detailed-exitcode"]
    assert run(argv) == 0  # export, then plan: no changes, every tenant found again
    assert set(results(capsys.readouterr().out).values()) == {"in sync"}


def test_export_out_dir_of_a_list(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = f"{domain(0)},{domain(1)}"
    argv = ["export", "--tenant", template(fleet), "--out", "two", "--tenants", names]
    assert run([*argv, "--tenants", domain(4)]) == 1  # t04 is gone: that tenant errors
    table = results(capsys.readouterr().out)
    assert table == {domain(0): "exported", domain(1): "exported", domain(4): "error"}
    assert sorted(p.name for p in (fleet / "two").iterdir()) == [
        f"{domain(0)}.yaml",
        f"{domain(1)}.yaml",
    ]


# --- markdown for pull requests --------------------------------------------------------------


def test_plan_dir_markdown_dir_writes_a_summary_and_one_section_per_tenant_not_in_sync(
    fleet: Path,
) -> None:
    plan_dir(fleet, "--markdown-dir", "md")
    summary = (fleet / "md" / "summary" / "part-1.md").read_text(encoding="utf-8")
    assert summary.startswith(f"### lwr plan for {N} tenants")
    assert summary.count(".example.yaml`") == N
    sections = {p.name for p in (fleet / "md" / "tenants").iterdir()}
    assert sections == {t for t in of_kind("change", "stale", "deny", "fail")}
    deny = (fleet / "md" / "tenants" / domain(3) / "part-1.md").read_text(encoding="utf-8")
    assert "**refused**" in deny and "greeting-has-message" in deny
    for i in range(N):  # now every tenant is in sync: their sections are removed
        if kind(i) != "sync":
            (fleet / "desired" / f"{domain(i)}.yaml").unlink()
    plan_dir(fleet, "--markdown-dir", "md")
    assert list((fleet / "md" / "tenants").iterdir()) == []

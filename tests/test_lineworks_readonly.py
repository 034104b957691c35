"""Read-only commands on a `lineworks:` tenant create and write nothing: no `.lwr/` folder,
no `attested.db`, no state store, however often they run (security: a read must never leave
personal data or a file others could read behind)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator.harness import Harness, emulated

from reconciler.cli import run
from reconciler.providers.local import init_demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"

#: Every command that only reads; each runs against a tenant whose state was never made.
READ_ONLY = [
    ["plan", str(EXAMPLE)],
    ["show"],
    ["show", "--format", "json"],
    ["drift", str(EXAMPLE)],
    ["export"],
    ["validate", str(EXAMPLE), "--tenant", "{tenant}"],
    ["show-plan", "{plan}", "--tenant", "{tenant}"],
    ["audit"],
    ["lock", "list"],
]


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The demo company on the emulator, lwr run from an empty working directory."""
    with init_demo(tmp_path / "seed.db") as demo:
        state = demo.read()
    with emulated(tmp_path / "emulator", state, attest=False) as harness:
        work = tmp_path / "work"
        work.mkdir()
        harness.aim(monkeypatch, work)
        yield harness


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: " ".join(a[:2]))
def test_read_only_command_creates_nothing(
    h: Harness, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    assert run(["plan", str(EXAMPLE), "--out", str(plan)]) in (0, 2)
    capsys.readouterr()
    before = _tree(tmp_path)
    code = run([a.format(tenant=h.uri(), plan=plan) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Internal error" not in err
    assert code in (0, 1, 2), err
    assert _tree(tmp_path) == before  # no .lwr/, no attested state, no state store
    assert not h.state_dir.exists()


def test_read_only_commands_read_what_attest_recorded(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once attested, a read-only `show` reads the attested state and leaves it unchanged."""
    assert run(["attest", str(EXAMPLE), "--yes"]) == 0
    assert (h.state_dir / "attested.db").is_file()
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    for argv in (["show"], ["plan", str(EXAMPLE)], ["drift", str(EXAMPLE)]):
        assert run(argv) in (0, 2)
    assert "(attested, not read)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before

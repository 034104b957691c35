"""What a `lineworks:` apply costs in API requests and time, and that the plan says so.

Through the real CLI (in-process `run`) and the emulator on 127.0.0.1: GET /users once per
apply when nothing waits between plan and apply, requests per API and the duration in every
plan format, half the limit for a run planned to last over 30 minutes (scaled windows).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator import Limits
from emulator.harness import Harness, emulated

from reconciler import workflow
from reconciler.cli import run
from reconciler.desired import load_desired
from reconciler.model import ChannelName
from reconciler.store.sqlite import SqliteStateStore

D = "example.co.jp"
LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS


def _file(path: Path, line: list[str], works: list[str]) -> Path:
    path.write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n"
        f"  line:\n    enabled: true\n"
        f"    members: {{policy: exact, include: [{', '.join(line)}]}}\n"
        f"  lineworks:\n    enabled: true\n"
        f"    members: {{policy: exact, include: [{', '.join(works)}]}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """250 members (3 pages of GET /users), both channels on: alice and bob linked."""
    with emulated(tmp_path) as harness:
        for i in range(248):
            harness.tenant.add_user(f"m{i:03d}@{D}")
        for name in ("alice", "bob"):
            harness.tenant.add_user(f"{name}@{D}")
        for channel in (LINE, LW):
            harness.tenant.channels[channel].enabled = True
            harness.tenant.channels[channel].linked = {f"alice@{D}", f"bob@{D}"}
        harness.aim(monkeypatch, tmp_path)
        now = _file(tmp_path / "now.yaml", [f"alice@{D}", f"bob@{D}"], [f"alice@{D}", f"bob@{D}"])
        assert run(["attest", str(now), "--yes"]) == 0
        yield harness


def _mixed(tmp_path: Path) -> Path:
    """Removals and additions on both channels."""
    return _file(
        tmp_path / "desired.yaml",
        [f"alice@{D}", f"m000@{D}", f"m001@{D}"],
        [f"bob@{D}", f"m002@{D}"],
    )


def test_auto_approved_apply_reads_the_directory_once(h: Harness, tmp_path: Path) -> None:
    desired = _mixed(tmp_path)
    before = h.emulator.count(200, "GET /users")
    assert run(["apply", str(desired), "--auto-approve"]) == 0
    assert h.emulator.count(200, "GET /users") - before == 3  # one read: 3 pages, not 6
    assert run(["plan", str(desired), "--detailed-exitcode"]) == 0


def test_a_saved_plan_is_applied_with_one_directory_read(h: Harness, tmp_path: Path) -> None:
    desired = _mixed(tmp_path)
    assert run(["plan", str(desired), "--out", str(tmp_path / "plan.json")]) == 0
    before = h.emulator.count(200, "GET /users")
    assert run(["apply", str(tmp_path / "plan.json"), "--auto-approve"]) == 0
    assert h.emulator.count(200, "GET /users") - before == 3


def test_an_apply_that_waited_reads_the_directory_again(h: Harness, tmp_path: Path) -> None:
    provider = h.provider()
    try:
        plan = workflow.plan_file(_mixed(tmp_path), provider)
        before = h.emulator.count(200, "GET /users")
        with SqliteStateStore(tmp_path / "s.db") as store:
            workflow.apply_plan(
                plan, provider, store, actor="ci@example", allow_destructive=True, waited=True
            )
        assert h.emulator.count(200, "GET /users") - before == 3  # the said cost of a prompt
    finally:
        provider.close()


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_every_plan_format_says_requests_per_api_and_how_long(
    h: Harness, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["plan", str(_mixed(tmp_path)), "--format", fmt]) == 0
    out = capsys.readouterr().out
    text = " ".join(json.loads(out)["warnings"]) if fmt == "json" else out
    for part in (
        "5 API requests",
        "unlink-to-line 1",
        "link-to-line 2",
        "unlink-to-works 1",
        "link-to-works 1",
        # Per phase its slowest API: 1 unlink, then 2 link-to-line beside 1 link-to-works.
        "≈ 0.02 s at 200 req/1 s per API, the APIs of a phase side by side",
        "+3 GET /users",
    ):
        assert part in text, (part, text)


def test_a_run_planned_over_30_minutes_keeps_to_half_the_limit(tmp_path: Path) -> None:
    # Scaled: 10 requests per 0.05 s window; 30 windows are the 30 minutes of the real API.
    limits = Limits(rate=10, window=0.05)
    with emulated(tmp_path, limits=limits) as h:
        names = [f"m{i:03d}@{D}" for i in range(320)]  # 320 links: 32 windows at full rate
        for email in names:
            h.tenant.add_user(email)
        h.tenant.channels[LINE].enabled = True
        provider = h.provider()
        try:
            provider.read()
            provider.attest(load_desired(_file(tmp_path / "now.yaml", [], [])), "admin")
            plan = workflow.plan_file(_file(tmp_path / "d.yaml", names, []), provider)
            note = next(w for w in plan.warnings if "API request" in w)
            assert "at 5 req/0.05 s per API (half the documented 10" in note
            started = time.monotonic()
            with SqliteStateStore(tmp_path / "s.db") as store:
                workflow.apply_plan(
                    plan, provider, store, actor="ci@example", allow_destructive=True
                )
            # 320 requests at 5 per 0.05 s take 3.2 s at least: never the full pace.
            assert time.monotonic() - started >= 320 / 5 * 0.05 * 0.95
        finally:
            provider.close()
        assert len(h.tenant.snapshot().channels[LINE].members) == 320

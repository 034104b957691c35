"""`lwr drift --verify-links`: the API's one read near the lists contradicts lwr's books.

Through the real CLI (in-process `run`) on the emulator at 127.0.0.1: an admin removes a member
in the console, outside lwr. Plain `lwr drift` cannot see it (the lists are attested, not read);
with `--verify-links` each attested member costs one `GET /users/{userId}/link-url`, and the
one the API says has no external permission is flagged (exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator.harness import Harness, emulated

from reconciler.cli import run
from reconciler.model import ChannelName

D = "example.co.jp"
LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
FILE = f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    members: {{policy: exact, include: [alice@{D}, bob@{D}]}}
  lineworks:
    enabled: true
    members: {{policy: exact, include: [bob@{D}]}}
"""


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """alice on LINE, bob on both, as attested; carol in the directory, on no list."""
    with emulated(tmp_path) as harness:
        for name in ("alice", "bob", "carol"):
            harness.tenant.add_user(f"{name}@{D}")
        for channel in (LINE, LW):
            harness.tenant.channels[channel].enabled = True
        harness.tenant.channels[LINE].linked = {f"alice@{D}", f"bob@{D}"}
        harness.tenant.channels[LW].linked = {f"bob@{D}"}
        harness.aim(monkeypatch, tmp_path)
        (tmp_path / "d.yaml").write_text(FILE, encoding="utf-8")
        assert run(["attest", "d.yaml", "--yes"]) == 0
        yield harness


def test_verify_links_flags_an_attested_member_the_api_says_has_no_permission(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    with h.tenant.lock:  # an admin removes alice in the console, outside lwr
        h.tenant.channels[LINE].linked.discard(f"alice@{D}")
    capsys.readouterr()
    assert run(["drift", "d.yaml"]) == 0  # attested, not read: plain drift cannot see it
    assert h.emulator.count(match="link-url") == 0
    capsys.readouterr()

    assert run(["drift", "d.yaml", "--verify-links"]) == 2
    out = capsys.readouterr().out
    assert f"alice@{D} is on lwr's attested line list" in out, out
    assert "no external permission" in out and "lwr attest FILE" in out
    assert f"bob@{D}" not in out and "In sync" not in out and "Drift:" not in out
    assert "contradicts lwr's attested state for 1 member" in out
    assert h.emulator.count(match="link-url") == 2  # one per attested member: alice, bob

    assert run(["drift", "d.yaml", "--verify-links", "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["in_sync"] is False
    assert any(f"alice@{D}" in w for w in report["warnings"])


def test_verify_links_in_sync_when_the_api_agrees(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["drift", "d.yaml", "--verify-links"]) == 0
    assert "In sync" in capsys.readouterr().out


def test_verify_links_of_a_directory_is_refused_not_silently_dropped(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / f"{D}.yaml").write_text(FILE, encoding="utf-8")
    capsys.readouterr()
    assert run(["drift", str(fleet), "--verify-links"]) == 1
    err = capsys.readouterr().err
    assert "--verify-links checks one tenant" in err
    assert h.emulator.count(match="link-url") == 0

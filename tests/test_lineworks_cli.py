"""`lwr` on a lineworks: tenant (the emulator): attest, show, plan, apply with manual steps,
and no secret in any output or state file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator.harness import Harness, emulated

from reconciler.cli import run
from reconciler.manual import split
from reconciler.providers.local import init_demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
D = "example.co.jp"
NOW = f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    auto_grant_new_members: false
    restrict_file_transfer: false
    greeting: {{enabled: false, message: ""}}
    members: {{policy: exact, include: [alice@{D}, bob@{D}, carol@{D}]}}
  lineworks:
    enabled: false
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def h(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    """The demo company on the emulator; lwr pointed at it through LWR_TENANT and LW_*, with
    journal and attested state in files beside it, then in PostgreSQL (LWR_STATE)."""
    with init_demo(tmp_path / "seed.db") as demo:
        state = demo.read()
    with emulated(tmp_path, state, attest=False) as harness:
        harness.aim(monkeypatch, tmp_path)
        if request.param == "postgresql":
            monkeypatch.setenv("LWR_STATE", request.getfixturevalue("pg_state"))
        yield harness


def test_attest_show_plan_apply_with_manual_steps(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = tmp_path / "now.yaml"
    now.write_text(NOW, encoding="utf-8")
    assert run(["attest", str(now), "--yes"]) == 0
    assert run(["show"]) == 0
    shown = capsys.readouterr().out
    assert "line — Chat with LINE users: on  (attested, not read)" in shown
    assert "open rooms with LINE users: 0  (not readable)" in shown

    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 2
    planned = capsys.readouterr().out
    assert "[manual step]" in planned and "attested, not read" in planned

    # No terminal: apply runs up to the first manual step and stops with exit 3.
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 3
    out, err = capsys.readouterr()
    assert (
        "Admin > Service > Message > External messaging > Chat with LINE WORKS users from "
        "other companies > Use status: set Use" in out + err
    )
    assert "--manual=attested" in err

    # The admin does the checklist in the console, then attests it.
    from reconciler import workflow
    from reconciler.providers import open_provider

    provider = open_provider(h.uri())
    try:
        pending = workflow.plan_file(EXAMPLE, provider).changes
    finally:
        provider.close()
    for change in pending:
        if change.execution == "manual":
            h.tenant.console_apply(change)
    assert run(["apply", str(EXAMPLE), "--auto-approve", "--manual=attested"]) == 0
    assert "Apply complete" in capsys.readouterr().out
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 0
    state = h.tenant.snapshot()
    assert state.channels["lineworks"].all_members  # type: ignore[index]
    assert state.channels["line"].members == {f"alice@{D}", f"bob@{D}", f"dave@{D}"}  # type: ignore[index]
    assert run(["audit", "--verify"]) == 0
    capsys.readouterr()
    assert run(["audit"]) == 0
    audit = capsys.readouterr().out
    assert "applied   lineworks grant_all_members" in audit and "line/" not in audit
    # Done by an admin in the console, not by lwr: audited as such.
    assert "attested  lineworks enable_channel" in audit
    assert "applied   lineworks enable_channel" not in audit


def test_skip_reports_what_is_left(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = tmp_path / "now.yaml"
    now.write_text(NOW, encoding="utf-8")
    assert run(["attest", str(now), "--yes"]) == 0
    assert run(["apply", str(EXAMPLE), "--auto-approve", "--manual=skip"]) == 0
    assert "Left for the next plan:" in capsys.readouterr().out


def test_manual_ask_needs_a_terminal(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", str(EXAMPLE), "--auto-approve", "--manual=ask"]) == 1
    assert "needs a terminal" in capsys.readouterr().err


def test_no_secret_in_any_output_or_state_file(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = tmp_path / "now.yaml"
    now.write_text(NOW, encoding="utf-8")
    outputs = []
    for argv in (
        ["attest", str(now), "--yes"],
        ["show"],
        ["show", "--format", "json"],
        ["plan", str(EXAMPLE), "--format", "json"],
        ["apply", str(EXAMPLE), "--auto-approve", "--manual=attested"],
        ["audit"],
        ["audit", "--format", "json"],
    ):
        run(argv)
        outputs.append("".join(capsys.readouterr()))
    monkeypatch.setenv("LW_CLIENT_SECRET", "definitely-wrong-" + h.credentials.client_secret)
    assert run(["plan", str(EXAMPLE)]) == 1
    outputs.append("".join(capsys.readouterr()))
    assert "refused the service-account token" in outputs[-1]

    key_body = h.credentials.key_file.read_text().splitlines()[1]
    secrets = [h.credentials.client_secret, key_body, *h.emulator.tokens]
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and p.suffix in (".db", ".json", ".yaml", "")
        and "app" not in p.parts
        and p.name != "seed.db"
    ]
    blobs = outputs + [p.read_bytes().decode("latin-1") for p in files]
    if os.environ.get("LWR_STATE"):  # PostgreSQL: every row of every table of the schema
        blobs.append(dump_schema(os.environ["LWR_STATE"]))
        assert "attested_settings" in blobs[-1] and "grant_all_members" in blobs[-1]
    else:
        assert any("attested.db" in str(p) for p in files) and any(
            "state.db" in str(p) for p in files
        )
    for secret in secrets:
        assert all(secret not in blob for blob in blobs)


def dump_schema(url: str) -> str:
    """Every table of the state schema, every row, as text."""
    import psycopg

    base, _, query = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (query,)
            )
        ]
        return "\n".join(
            f"{t}: {row}" for t in tables for row in conn.execute(f'SELECT * FROM "{query}"."{t}"')
        )


def test_checklist_counts_match_the_plan(h: Harness, tmp_path: Path) -> None:
    from reconciler import workflow
    from reconciler.providers import open_provider

    provider = open_provider(h.uri())
    try:
        plan = workflow.plan_file(EXAMPLE, provider)
    finally:
        provider.close()
    assert plan.summary()["manual"] == sum(
        1 for c in split(plan.changes, "skip").held if c.execution == "manual"
    )

"""A refusal of one change does not stop the world, and every record agrees with the tenant.

Through the real CLI on the LINE WORKS emulator: two members whose names hold an emoji (the
API's documented name rule refuses linking them to LINE) sit in the middle of a batch of
seven links. Every other link is made; the report names the two and what to do; the audit
log, the journal, the attested state and the printed counts say exactly what took effect;
the next plan makes the two manual steps. `--fail-fast` stops at the first refusal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import channel_state, tenant
from emulator.harness import Harness, emulated

from reconciler import workflow
from reconciler.cli import run
from reconciler.errors import ExitCode
from reconciler.export import dump_yaml, export_document
from reconciler.manual import ManualStep, ManualStepsPending
from reconciler.model import ChannelName
from reconciler.providers import open_provider
from reconciler.stopped import ApplyStopped
from reconciler.store import StateLocation

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
D = "example.co.jp"
PEOPLE = ("alice", "bea", "bob", "carol", "dave", "erin", "frank")
#: The API refuses linking these to LINE (their names hold an emoji).
EMOJI = {f"carol@{D}": "Carol 🌸", f"dave@{D}": "Dave 🎉"}
DESIRED = f"""version: 1
tenant: {D}
external_messaging:
  line:
    members: {{policy: exact, include: [alice@{D}, bob@{D}, carol@{D}, dave@{D}]}}
  lineworks:
    members: {{policy: exact, include: [alice@{D}, erin@{D}, frank@{D}]}}
"""
CAROL = f"line/add_member/carol@{D}"
DAVE = f"line/add_member/dave@{D}"


@pytest.fixture(params=["sqlite", "postgresql"])
def h(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    """Both channels on with empty lists, attested; seven members, two with an emoji. The
    journal and attested state in files beside it, then in PostgreSQL (LWR_STATE)."""
    state = tenant(frozenset(f"{p}@{D}" for p in PEOPLE), channel_state(LINE), channel_state(LW))
    with emulated(tmp_path, attest=False) as harness:
        harness.tenant.seed(state, EMOJI)
        harness.aim(monkeypatch, tmp_path)
        if request.param == "postgresql":
            monkeypatch.setenv("LWR_STATE", request.getfixturevalue("pg_state"))
        now = tmp_path / "console-now.yaml"  # the admin attests the console as it is
        now.write_text(dump_yaml(export_document(state)), encoding="utf-8")
        assert run(["attest", str(now), "--yes"]) == 0
        (tmp_path / "d.yaml").write_text(DESIRED, encoding="utf-8")
        yield harness


def linked(h: Harness) -> dict[ChannelName, frozenset[str]]:
    """What the API's side holds now."""
    snap = h.tenant.snapshot()
    return {c: frozenset(snap.channels[c].members) for c in (LINE, LW)}


def audit_rows(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    capsys.readouterr()
    assert run(["audit", "--format", "json", "--limit", "1000"]) == 0
    return list(json.loads(capsys.readouterr().out))


def journal(h: Harness) -> dict[str, str]:
    """The latest run's journal: change id → done / failed."""
    store = StateLocation.resolve(os.environ.get("LWR_STATE"), h.uri()).open(readonly=True)
    try:
        [*_, last] = store.runs()
        return {e.change_id: e.state for e in store.entries(last.run_id)}
    finally:
        store.close()


def attested_lists(h: Harness) -> dict[ChannelName, frozenset[str]]:
    provider = open_provider(h.uri(), os.environ.get("LWR_STATE"))
    try:
        state = provider.read()
    finally:
        provider.close()
    return {c: state.channels[c].members for c in (LINE, LW)}


def test_a_refused_link_mid_batch_stops_nothing_else_and_every_record_agrees(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "d.yaml", "--auto-approve"]) == 1
    err = capsys.readouterr().err

    made = linked(h)
    assert made[LINE] == {f"alice@{D}", f"bob@{D}"}
    assert made[LW] == {f"alice@{D}", f"erin@{D}", f"frank@{D}"}  # the other channel went on
    # The report: every refused change, why, and what to do; the counts as they took effect.
    assert "2 changes refused by the tenant, 0 skipped" in err and "5 applied" in err, err
    for refused in (CAROL, DAVE):
        assert f"refused  {refused}" in err
    assert "emoji" in err and "Connected-members > Manage" in err
    assert "The next plan lists it as a manual step" in err
    assert "applied 5/7 (71 %) · 2 refused" in err

    rows = {r["change_id"]: r["result"] for r in audit_rows(capsys)}
    assert rows == {
        **{c: "applied" for c in journal(h) if c not in (CAROL, DAVE)},
        CAROL: "failed",
        DAVE: "failed",
    }
    assert len(rows) == 7
    assert journal(h) == {c: ("failed" if c in (CAROL, DAVE) else "done") for c in rows}
    assert attested_lists(h) == made  # lwr's books hold what the API did, no more, no less


def test_the_next_plan_makes_the_refused_links_manual_steps(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "d.yaml", "--auto-approve"]) == 1
    capsys.readouterr()

    assert run(["plan", "d.yaml", "--detailed-exitcode"]) == 2
    planned = capsys.readouterr().out
    assert "2 changes the tenant refused for good" in planned
    assert planned.count("[manual step]") == 2, planned

    # The admin adds them in the console and says so: the page is then as the file says.
    with h.tenant.lock:
        h.tenant.channels[LINE].linked.update(EMOJI)
    assert run(["apply", "d.yaml", "--auto-approve", "--manual", "attested"]) == 0
    assert "Apply complete: 2 changes applied" in capsys.readouterr().out
    assert run(["plan", "d.yaml", "--detailed-exitcode"]) == 0
    assert attested_lists(h)[LINE] == {f"{p}@{D}" for p in ("alice", "bob", "carol", "dave")}


def test_fail_fast_stops_at_the_first_refusal_with_exact_counts(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "d.yaml", "--auto-approve", "--fail-fast"]) == 1
    err = capsys.readouterr().err

    made = linked(h)
    assert made == {LINE: {f"alice@{D}", f"bob@{D}"}, LW: frozenset()}
    assert "2 of 7 changes applied" in err and f"stopped at {CAROL}" in err, err
    assert "applied 2/7 (28 %) · 1 refused · phase 4 add members" in err  # how far it got
    rows = {r["change_id"]: r["result"] for r in audit_rows(capsys)}
    assert rows == {
        f"line/add_member/alice@{D}": "applied",
        f"line/add_member/bob@{D}": "applied",
        CAROL: "failed",
    }
    states = journal(h)
    assert [c for c, s in states.items() if s == "done"] == list(rows)[:2]
    assert states[CAROL] == "failed" and len(states) == 7  # the rest: never attempted
    assert attested_lists(h) == made


def test_a_batch_stopped_part_way_records_what_took_effect_before_the_stop(
    h: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A link made, then a manual step the admin does not confirm, in one batch: the link is
    `applied`, the step `failed`, the rest never attempted (journaled, not audited)."""
    assert run(["apply", "d.yaml", "--auto-approve"]) == 1  # carol and dave: manual from now
    capsys.readouterr()
    (tmp_path / "d.yaml").write_text(
        DESIRED.replace("[alice@", "[bea@example.co.jp, alice@", 1), encoding="utf-8"
    )
    provider = open_provider(h.uri(), os.environ.get("LWR_STATE"))
    store = StateLocation.resolve(os.environ.get("LWR_STATE"), h.uri()).open()
    asked: list[str] = []

    def admin_stops(step: ManualStep) -> bool:
        asked.append(step.change.id)
        return False

    try:
        plan = workflow.plan_file(tmp_path / "d.yaml", provider)
        assert [(c.id, c.execution) for c in plan.changes] == [
            (f"line/add_member/bea@{D}", "api"),
            (CAROL, "manual"),
            (DAVE, "manual"),
        ]
        with pytest.raises(ApplyStopped) as stopped:
            workflow.apply_plan(
                plan,
                provider,
                store,
                actor="ci",
                allow_destructive=False,
                manual="ask",
                on_manual=admin_stops,
            )
    finally:
        provider.close()
        store.close()
    assert isinstance(stopped.value.cause, ManualStepsPending)
    assert stopped.value.exit_code == ExitCode.REFUSED and asked == [CAROL]
    assert stopped.value.result.applied == [f"line/add_member/bea@{D}"]
    assert f"bea@{D}" in linked(h)[LINE] and f"bea@{D}" in attested_lists(h)[LINE]
    assert journal(h) == {f"line/add_member/bea@{D}": "done", CAROL: "failed", DAVE: "failed"}
    rows = audit_rows(capsys)
    assert [(r["change_id"], r["result"]) for r in rows[-2:]] in (
        [(f"line/add_member/bea@{D}", "applied"), (CAROL, "failed")],
        [(CAROL, "failed"), (f"line/add_member/bea@{D}", "applied")],
    )
    assert sum(r["change_id"] == DAVE for r in rows) == 1  # only its refusal of the first apply

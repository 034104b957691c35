"""The views moved into render/ (state, audit and lock lines, colour) print exactly what the
CLI printed before, and make every value from a tenant or the store printable."""

from __future__ import annotations

import click
import pytest

from reconciler.render.ansi import style
from reconciler.render.audit import audit_text, locks_text
from reconciler.store.base import AuditEntry, LockHolder


@pytest.mark.parametrize("fg", [None, "red", "green", "yellow", "cyan", "magenta", "blue"])
@pytest.mark.parametrize("bold", [None, True, False])
def test_colour_is_byte_for_byte_what_click_wrote(fg: str | None, bold: bool | None) -> None:
    assert style("Phase 1 · 公開", fg=fg, bold=bold) == click.style(
        "Phase 1 · 公開", fg=fg, bold=bold
    )


def test_audit_lines_escape_what_a_tenant_or_file_supplied() -> None:
    entry = AuditEntry(
        tenant_key="local:/t",
        domain="example.co.jp",
        run_id="r",
        actor="ci\x1b[2J",
        change_id="c",
        action="add_member",
        channel="line",
        target="mallory\u202e@example.co.jp",
        before=False,
        after=True,
        result="applied",
        seq=1,
        at="2026-01-01T00:00:00+00:00",
        prev_hash="p",
        hash="h",
    )
    text = audit_text([entry])
    assert "\x1b" not in text and "\u202e" not in text
    assert text == (
        "2026-01-01T00:00:00+00:00  ci\\x1b[2J  applied   line      add_member "
        "mallory\\u202e@example.co.jp\n"
    )
    assert audit_text([]) == "No applied changes recorded for this tenant.\n"


def test_lock_lines_name_the_holder_and_escape_it() -> None:
    held = LockHolder(
        tenant_key="local:/t\x07",
        user="ops",
        host="elsewhere.invalid",
        pid=42,
        operation="apply",
        since="2026-01-01T00:00:00+00:00",
    )
    text = locks_text([held], "state.db")
    assert text.startswith("local:/t\\x07\n  held by ")
    assert "it was taken on elsewhere.invalid: make sure that run is over" in text
    assert locks_text([], "state.db") == "No locks held in state.db.\n"
    assert (
        locks_text([], "/x\x1b.db", exists=False)
        == "No locks held: there is no state store at /x\\x1b.db.\n"
    )


def test_a_tenant_stopped_before_manual_steps_lists_them_in_every_fleet_view() -> None:
    """ManualStepsPending carries the steps; the fleet views word them (render.checklist),
    as `lwr apply FILE` does: the error's own message is one line."""
    import json

    from reconciler.actions import Action, Change, change_id
    from reconciler.errors import ExitCode
    from reconciler.fleet import TenantResult
    from reconciler.manual import ManualStepsPending
    from reconciler.model import ChannelName
    from reconciler.render import fleet as fleet_view

    action, channel = Action.SET_FILE_RESTRICTION, ChannelName.LINE
    step = Change(
        change_id(action, channel), action, channel, None, False, True, execution="manual"
    )
    pending = ManualStepsPending([step], "a non-interactive apply stops before manual steps")
    result = TenantResult(
        "a.yaml",
        "example.co.jp",
        "lineworks:",
        "refused",
        ExitCode.REFUSED,
        1,
        0,
        0,
        str(pending),
        pending=pending,
    )
    wanted = "Restrict file transfer/attachment: set On, then press Save"
    assert "\n" not in str(pending) and wanted not in str(pending)
    assert wanted in fleet_view.render_text([result])
    assert wanted in fleet_view.render_markdown([result])
    assert wanted in json.loads(fleet_view.render_json([result], 3))["tenants"][0]["message"]
    assert (
        "a.yaml: refused: a non-interactive apply stops before manual steps; 1 manual step "
        "not done:" in fleet_view.summary_text([result])
    )

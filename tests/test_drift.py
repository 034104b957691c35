"""Drift: each drifted setting with both values, member lists by set algebra, the CLI's exits."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from builders import (
    ALL,
    DOMAIN,
    LINE,
    LW,
    DesiredChannel,
    GreetingSpec,
    channel_state,
    desired,
    emails,
    listed,
    tenant,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import run
from reconciler.drift import DriftReport, drift_report
from reconciler.errors import InputError
from reconciler.model import ChannelState, DesiredState, MembersSpec, TenantState
from reconciler.plan import make_plan
from reconciler.resources import load_schema

STAFF = emails("alice", "bob", "carol", "dave", "erin")


def report_of(want: DesiredState, current: TenantState) -> DriftReport:
    return drift_report(want, current, make_plan(want, current, "local:/t.db"))


def test_in_sync_when_every_managed_value_matches() -> None:
    current = tenant(
        STAFF,
        line=channel_state(
            members=emails("alice"), greeting_enabled=True, greeting_message="ようこそ"
        ),
    )
    want = desired(
        line=DesiredChannel(
            enabled=True, members=listed("alice"), greeting=GreetingSpec(True, "ようこそ")
        )
    )
    report = report_of(want, current)
    assert report.in_sync and report.changes == 0 and report.channels() == ()


def test_each_drifted_setting_has_desired_and_current_values() -> None:
    current = tenant(
        STAFF,
        line=channel_state(
            restrict_file_transfer=False,
            auto_grant_new_members=True,
            greeting_enabled=True,
            greeting_message="旧",
        ),
        lineworks=channel_state(LW, enabled=False),
    )
    want = desired(
        line=DesiredChannel(
            restrict_file_transfer=True,
            auto_grant_new_members=True,
            greeting=GreetingSpec(message="新しい挨拶"),
        ),
        lineworks=DesiredChannel(enabled=True, members=ALL),
    )
    report = report_of(want, current)
    assert [(d.channel, d.setting, d.desired, d.current) for d in report.settings] == [
        (LINE, "restrict_file_transfer", True, False),
        (LINE, "greeting.message", "新しい挨拶", "旧"),
        (LW, "enabled", True, False),
        (LW, "members", "all", "listed"),
    ]
    assert report.members == ()  # `all` is a mode, not a list
    assert report.summary() == {
        "settings": 4,
        "members_missing": 0,
        "members_unexpected": 0,
        "changes": report.changes,
    }


def test_unmanaged_keys_and_channels_never_drift() -> None:
    current = tenant(
        STAFF,
        line=channel_state(auto_grant_new_members=True, restrict_file_transfer=True),
        lineworks=channel_state(LW, enabled=False, members=STAFF),
    )
    assert report_of(desired(line=DesiredChannel(enabled=True)), current).in_sync


def test_member_lists_by_set_algebra() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice", "bob", "carol")))
    report = report_of(desired(line=DesiredChannel(members=listed("alice", "dave"))), current)
    (m,) = report.members
    assert (m.policy, m.desired_count, m.current_count) == ("exact", 2, 3)
    assert m.missing == tuple(sorted(emails("dave")))
    assert m.unexpected == tuple(sorted(emails("bob", "carol")))
    additive = report_of(
        desired(line=DesiredChannel(members=listed("alice", "dave", policy="additive"))), current
    )
    (m,) = additive.members
    assert m.missing == (f"dave@{DOMAIN}",) and m.unexpected == ()  # extras are kept


def test_a_list_in_all_members_mode_is_compared_with_the_directory() -> None:
    current = tenant(STAFF, line=channel_state(all_members=True, members=STAFF))
    report = report_of(desired(line=DesiredChannel(members=listed("alice"))), current)
    assert [(d.setting, d.desired, d.current) for d in report.settings] == [
        ("members", "listed", "all")
    ]
    assert report.members[0].unexpected == tuple(sorted(STAFF - emails("alice")))


def test_the_report_follows_its_schema() -> None:
    current = tenant(
        STAFF,
        line=channel_state(members=emails("bob"), greeting_message=None, greeting_enabled=None),
    )
    want = desired(line=DesiredChannel(members=listed("alice"), greeting=GreetingSpec(True, "hi")))
    document = report_of(want, current).to_json()
    jsonschema.validate(document, load_schema("drift.schema.json"))
    assert document["in_sync"] is False and document["kind"] == "drift"


# --- drift agrees with plan -------------------------------------------------------------------

optional = st.one_of(st.none(), st.booleans())
some_staff = st.frozensets(st.sampled_from(sorted(STAFF)))


@st.composite
def tenant_channel(draw: st.DrawFn, line: bool) -> ChannelState:
    all_members = draw(st.booleans())
    return channel_state(
        LINE if line else LW,
        enabled=draw(st.booleans()),
        all_members=all_members,
        members=STAFF if all_members else draw(some_staff),
        auto_grant_new_members=draw(st.booleans()),
        restrict_file_transfer=draw(st.booleans()),
        greeting_enabled=draw(st.booleans()) if line else None,
        greeting_message=draw(st.sampled_from(["", "ようこそ"])) if line else None,
    )


@st.composite
def desired_channel(draw: st.DrawFn, line: bool) -> DesiredChannel | None:
    if draw(st.booleans()):
        return None
    enabled = draw(optional)
    if enabled is False:
        return DesiredChannel(enabled=False)
    greeting = None
    if line and draw(st.booleans()):
        greeting = GreetingSpec(draw(optional), draw(st.sampled_from([None, "", "ようこそ"])))
    members = draw(
        st.one_of(
            st.none(),
            st.just(ALL),
            st.builds(
                MembersSpec, st.just(False), st.sampled_from(["exact", "additive"]), some_staff
            ),
        )
    )
    return DesiredChannel(
        enabled=enabled,
        auto_grant_new_members=draw(optional),
        restrict_file_transfer=draw(optional),
        greeting=greeting,
        members=members,
    )


@settings(max_examples=200, deadline=None)
@given(tenant_channel(True), tenant_channel(False), desired_channel(True), desired_channel(False))
def test_drift_is_reported_exactly_when_plan_has_changes(
    line: ChannelState,
    lw: ChannelState,
    want_line: DesiredChannel | None,
    want_lw: DesiredChannel | None,
) -> None:
    want = desired(line=want_line, lineworks=want_lw)
    current = tenant(STAFF, line=line, lineworks=lw)
    try:
        plan = make_plan(want, current, "local:/t.db")
    except InputError:
        return  # a list managed on a channel left off: plan and drift both refuse (exit 1)
    report = drift_report(want, current, plan)
    assert report.in_sync == (not plan.changes)
    missing = sum(len(m.missing) for m in report.members)
    unexpected = sum(len(m.unexpected) for m in report.members)
    assert missing == plan.summary()["by_action"].get("add_member", 0)
    assert unexpected == plan.summary()["by_action"].get("remove_member", 0)


# --- the CLI ----------------------------------------------------------------------------------


def test_drift_exits_2_then_0_and_reports_in_every_format(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = demo / "d.yaml"
    f.write_text(
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n"
        "    restrict_file_transfer: true\n    greeting:\n      enabled: true\n"
        "      message: 友だち追加ありがとうございます。\n    members:\n"
        "      include: [alice@example.co.jp, dave@example.co.jp]\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert run(["drift", str(f)]) == 2
    out = capsys.readouterr().out
    assert "restrict_file_transfer   desired on, current off" in out
    assert "greeting.message         desired “友だち追加ありがとうございます。”, current “”" in out
    assert "+ 1 in the file, not on the list: dave@example.co.jp" in out
    assert "- 2 on the list, not in the file: bob@example.co.jp, carol@example.co.jp" in out

    assert run(["drift", str(f), "--format", "json"]) == 2
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, load_schema("drift.schema.json"))
    assert document["summary"] == {
        "settings": 3,
        "members_missing": 1,
        "members_unexpected": 2,
        "changes": 5,
    }
    assert document["policy"]["evaluated"] == 3

    assert run(["drift", str(f), "--format", "markdown"]) == 2
    md = capsys.readouterr().out
    assert "| greeting.message | “友だち追加ありがとうございます。” | “” |" in md

    assert run(["apply", str(f), "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["drift", str(f), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["in_sync"] is True


def test_drift_of_an_invalid_file_is_exit_1(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = demo / "bad.yaml"
    f.write_text(
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    enabeld: true\n",
        encoding="utf-8",
    )
    assert run(["drift", str(f)]) == 1
    assert f"{f}:5:5" in capsys.readouterr().err

"""The planner: every action, the seven-phase order, dependencies, side effects, safety marks."""

from __future__ import annotations

import pytest
from builders import (
    ALL,
    DOMAIN,
    LW,
    DesiredChannel,
    GreetingSpec,
    channel_state,
    desired,
    emails,
    listed,
    tenant,
)

from reconciler.actions import Action, Phase
from reconciler.errors import DestructiveRefused, InputError
from reconciler.model import ChannelName, MembersSpec, SafetySettings
from reconciler.plan import make_plan
from reconciler.planner import diff

STAFF = emails("alice", "bob", "carol", "dave", "erin")


def actions(result: object) -> list[tuple[str, str, str | None]]:
    return [(c.channel.value, c.action.value, c.target) for c in result.changes]  # type: ignore[attr-defined]


def test_in_sync_plans_nothing() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice")))
    want = desired(line=DesiredChannel(enabled=True, members=listed("alice")))
    assert diff(want, current).changes == ()


def test_unmanaged_keys_and_channels_never_change() -> None:
    current = tenant(
        STAFF,
        line=channel_state(members=emails("alice"), restrict_file_transfer=True),
        lineworks=channel_state(LW, enabled=False),
    )
    # Only auto-grant is managed; file restriction, members and lineworks are left alone.
    want = desired(line=DesiredChannel(auto_grant_new_members=False))
    assert diff(want, current).changes == ()


def test_exact_policy_adds_and_removes_by_set_difference() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice", "carol")))
    result = diff(desired(line=DesiredChannel(members=listed("alice", "bob"))), current)
    assert actions(result) == [
        ("line", "remove_member", f"carol@{DOMAIN}"),
        ("line", "add_member", f"bob@{DOMAIN}"),
    ]


def test_additive_policy_never_removes_and_says_what_it_keeps() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice", "carol")))
    result = diff(desired(line=DesiredChannel(members=listed("bob", policy="additive"))), current)
    assert actions(result) == [("line", "add_member", f"bob@{DOMAIN}")]
    assert any("2 members on the list are not in the file" in w for w in result.warnings)


def test_full_order_tightens_before_loosening_and_disables_last() -> None:
    current = tenant(
        STAFF,
        line=channel_state(
            members=emails("alice", "carol"),
            restrict_file_transfer=False,
            auto_grant_new_members=True,
        ),
        lineworks=channel_state(LW, enabled=False, restrict_file_transfer=True),
    )
    want = desired(
        line=DesiredChannel(enabled=False),
        lineworks=DesiredChannel(
            enabled=True,
            restrict_file_transfer=False,
            auto_grant_new_members=True,
            members=listed("bob"),
        ),
    )
    phases = [c.phase for c in diff(want, current).changes]
    assert phases == sorted(phases)
    assert actions(diff(want, current)) == [
        ("lineworks", "enable_channel", None),
        ("lineworks", "add_member", f"bob@{DOMAIN}"),
        ("lineworks", "set_file_restriction", None),
        ("lineworks", "set_auto_grant", None),
        ("line", "disable_channel", None),
    ]


def test_switches_tighten_in_phase_two_and_loosen_in_phase_six() -> None:
    current = tenant(
        STAFF, line=channel_state(restrict_file_transfer=False, auto_grant_new_members=True)
    )
    tighten = diff(
        desired(line=DesiredChannel(restrict_file_transfer=True, auto_grant_new_members=False)),
        current,
    )
    assert {c.phase for c in tighten.changes} == {Phase.TIGHTEN}
    current = tenant(
        STAFF, line=channel_state(restrict_file_transfer=True, auto_grant_new_members=False)
    )
    loosen = diff(
        desired(line=DesiredChannel(restrict_file_transfer=False, auto_grant_new_members=True)),
        current,
    )
    assert {c.phase for c in loosen.changes} == {Phase.LOOSEN}


def test_member_changes_depend_on_enabling_the_channel() -> None:
    current = tenant(STAFF, line=channel_state(enabled=False, members=emails("carol")))
    result = diff(
        desired(
            line=DesiredChannel(enabled=True, restrict_file_transfer=True, members=listed("alice"))
        ),
        current,
    )
    by_id = {c.id: c for c in result.changes}
    assert by_id[f"line/add_member/alice@{DOMAIN}"].depends_on == (
        "line/enable_channel",
        "line/set_file_restriction",
    )
    assert by_id[f"line/remove_member/carol@{DOMAIN}"].depends_on == (
        "line/enable_channel",
        "line/set_file_restriction",
    )
    assert by_id["line/set_file_restriction"].depends_on == ("line/enable_channel",)
    assert by_id["line/enable_channel"].depends_on == ()


def test_all_members_grant_and_restrict_freeze_the_directory() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice")))
    grant = diff(desired(line=DesiredChannel(members=ALL)), current)
    assert actions(grant) == [("line", "grant_all_members", None)]
    assert grant.changes[0].side_effects[0].count == 4  # bob, carol, dave, erin gain access

    current = tenant(STAFF, line=channel_state(all_members=True, members=STAFF))
    restrict = diff(desired(line=DesiredChannel(members=listed("alice", "bob"))), current)
    assert actions(restrict) == [
        ("line", "restrict_to_listed_members", None),
        ("line", "remove_member", f"carol@{DOMAIN}"),
        ("line", "remove_member", f"dave@{DOMAIN}"),
        ("line", "remove_member", f"erin@{DOMAIN}"),
    ]
    assert restrict.changes[0].phase is Phase.TIGHTEN


def test_greeting_changes_only_the_keys_that_differ() -> None:
    current = tenant(
        STAFF, line=channel_state(greeting_enabled=True, greeting_message="こんにちは")
    )
    result = diff(
        desired(
            line=DesiredChannel(
                greeting=GreetingSpec(enabled=True, message="友だち追加ありがとうございます")
            )
        ),
        current,
    )
    (change,) = result.changes
    assert change.action is Action.SET_GREETING
    assert change.before == {"message": "こんにちは"}
    assert change.after == {"message": "友だち追加ありがとうございます"}
    assert "友だち追加ありがとうございます" in change.side_effects[0].text


def test_greeting_off_side_effect() -> None:
    current = tenant(STAFF, line=channel_state(greeting_enabled=True, greeting_message="hi"))
    (change,) = diff(
        desired(line=DesiredChannel(greeting=GreetingSpec(enabled=False))), current
    ).changes
    assert change.after == {"enabled": False}
    assert change.side_effects[0].kind == "greeting_off"


def test_disable_side_effects_count_rooms_and_members_from_the_tenant() -> None:
    current = tenant(
        STAFF,
        line=channel_state(
            members=emails("alice", "carol"),
            open_rooms={f"alice@{DOMAIN}": 2, f"carol@{DOMAIN}": 1},
        ),
    )
    (change,) = diff(desired(line=DesiredChannel(enabled=False)), current).changes
    effects = {e.kind: e for e in change.side_effects}
    assert change.destructive
    assert effects["rooms_hidden"].count == 3
    assert effects["members_unknown"].count == 2
    assert effects["external_chat_disabled"].count == 2
    assert "Admin Audit" in effects["history_kept"].text


def test_remove_member_counts_that_members_open_rooms() -> None:
    current = tenant(
        STAFF,
        line=channel_state(members=emails("alice", "carol"), open_rooms={f"carol@{DOMAIN}": 3}),
    )
    result = diff(desired(line=DesiredChannel(members=listed("alice"))), current)
    (effect,) = result.changes[0].side_effects
    assert (effect.kind, effect.count) == ("loses_external_chat", 3)
    assert "3 open rooms" in effect.text


def test_file_restriction_on_lineworks_also_blocks_group_attachments() -> None:
    current = tenant(STAFF)
    (change,) = diff(
        desired(lineworks=DesiredChannel(restrict_file_transfer=True)), current
    ).changes
    kinds = [e.kind for e in change.side_effects]
    assert kinds == ["buttons_disabled", "attachments_blocked"]
    (line_change,) = diff(
        desired(line=DesiredChannel(restrict_file_transfer=True)), current
    ).changes
    assert [e.kind for e in line_change.side_effects] == ["buttons_disabled"]


def test_auto_grant_with_exact_list_warns_about_drift() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("alice")))
    result = diff(
        desired(line=DesiredChannel(auto_grant_new_members=True, members=listed("alice"))), current
    )
    assert any("drift" in w for w in result.warnings)
    quiet = diff(
        desired(
            line=DesiredChannel(
                auto_grant_new_members=True, members=listed("alice", policy="additive")
            )
        ),
        current,
    )
    assert not any("drift" in w for w in quiet.warnings)


def test_member_changes_on_a_channel_left_off_are_an_error() -> None:
    current = tenant(STAFF, line=channel_state(enabled=False))
    with pytest.raises(InputError, match="enabled: true"):
        diff(desired(line=DesiredChannel(members=listed("alice"))), current)


def test_removals_over_threshold_are_destructive_and_refused() -> None:
    big = frozenset(f"m{i}@{DOMAIN}" for i in range(100))
    current = tenant(big, line=channel_state(members=big))
    keep = frozenset(sorted(big)[:90])  # removes 10 of 100: 10 % ≤ 20 %, 10 ≤ 50 → fine
    want = desired(line=DesiredChannel(members=MembersSpec(False, "exact", keep)))
    assert not any(c.destructive for c in diff(want, current).changes)

    keep = frozenset(sorted(big)[:70])  # 30 % of the list and 30 > 5 members → destructive
    want = desired(line=DesiredChannel(members=MembersSpec(False, "exact", keep)))
    plan = make_plan(want, current, "local:/x")
    assert len(plan.destructive) == 30
    with pytest.raises(DestructiveRefused, match=r"removing 30 members exceeds"):
        plan.raise_if_unsafe(allow_destructive=False)
    plan.raise_if_unsafe(allow_destructive=True)


def test_small_lists_may_lose_a_large_share_without_being_destructive() -> None:
    current = tenant(STAFF, line=channel_state(members=STAFF))
    # 4 of 5 is 80 % but not more than 5 members.
    result = diff(desired(line=DesiredChannel(members=listed("alice"))), current)
    assert not any(c.destructive for c in result.changes)


def test_safety_block_lowers_the_threshold() -> None:
    current = tenant(STAFF, line=channel_state(members=STAFF))
    want = desired(
        line=DesiredChannel(members=listed("alice")), safety=SafetySettings(max_member_removals=3)
    )
    assert all(c.destructive for c in diff(want, current).changes)


def test_protected_channel_cannot_be_turned_off_even_when_allowed() -> None:
    current = tenant(STAFF)
    want = desired(
        line=DesiredChannel(enabled=False),
        safety=SafetySettings(protect_channels=frozenset({ChannelName.LINE})),
    )
    plan = make_plan(want, current, "local:/x")
    with pytest.raises(DestructiveRefused, match="protect_channels"):
        plan.raise_if_unsafe(allow_destructive=True)


def test_change_ids_are_stable_across_plans() -> None:
    current = tenant(STAFF, line=channel_state(members=emails("carol")))
    want = desired(line=DesiredChannel(members=listed("alice")))
    assert [c.id for c in diff(want, current).changes] == [
        c.id for c in diff(want, current).changes
    ]

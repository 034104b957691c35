"""The local tenant obeys the console rules of docs/domain.md, on real SQLite files.

One rule per test; every change goes through `apply` the way the reconciler sends it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localdb import UNKNOWN_MEMBER, room_lists

from reconciler.actions import Action, Change, change_id
from reconciler.errors import TenantError, TenantRuleError, UsageError
from reconciler.model import ChannelName, TenantState
from reconciler.providers.base import Provider
from reconciler.providers.local import (
    SCHEMA_VERSION,
    ChangeRefused,
    LocalTenant,
    init_demo,
)

LINE = ChannelName.LINE
WORKS = ChannelName.LINEWORKS
D = "@example.co.jp"
ALICE, BOB, CAROL, DAVE, ERIN = (f"{n}{D}" for n in ("alice", "bob", "carol", "dave", "erin"))
GREETING = "友だち追加ありがとうございます。営業時間は9:00〜18:00です。"


def chg(
    action: Action,
    channel: ChannelName,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
) -> Change:
    """A change as the planner builds it (before/after optional, as in a hand-made plan)."""
    return Change(change_id(action, channel, target), action, channel, target, before, after)


def add(channel: ChannelName, email: str) -> Change:
    return chg(Action.ADD_MEMBER, channel, email, False, True)


def remove(channel: ChannelName, email: str) -> Change:
    return chg(Action.REMOVE_MEMBER, channel, email, True, False)


def enable(channel: ChannelName) -> Change:
    return chg(Action.ENABLE_CHANNEL, channel, before=False, after=True)


def disable(channel: ChannelName) -> Change:
    return chg(Action.DISABLE_CHANNEL, channel, before=True, after=False)


def switch(action: Action, channel: ChannelName, after: bool) -> Change:
    return chg(action, channel, before=not after, after=after)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "tenant.db"


@pytest.fixture
def demo(path: Path) -> Iterator[LocalTenant]:
    tenant = init_demo(path)
    yield tenant
    tenant.close()


def refused(tenant: LocalTenant, changes: list[Change], rule: str) -> ChangeRefused:
    """Apply must refuse, name a change and the rule, and leave the tenant as it was."""
    before = tenant.read()
    with pytest.raises(ChangeRefused, match=rule) as info:
        tenant.apply(changes)
    assert tenant.read() == before
    return info.value


# --------------------------------------------------------------------------- the file


def test_missing_file_says_how_to_create_one(path: Path) -> None:
    with pytest.raises(TenantError, match="lwr tenant init --demo"):
        LocalTenant.open(path)
    assert not path.exists()


def test_create_makes_parent_dirs_and_an_empty_tenant(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "tenant.db"
    with LocalTenant.open(path, create=True, domain="corp.example.jp") as tenant:
        state = tenant.read()
        assert tenant.key == f"local:{path.resolve()}"
        assert tenant.batch_size == 500
        assert all(tenant.execution(a) == "local" for a in Action)
    assert state.domain == "corp.example.jp"
    assert state.directory == frozenset()
    assert not state.channels[LINE].enabled and not state.channels[WORKS].enabled
    assert (state.channels[LINE].greeting_enabled, state.channels[LINE].greeting_message) == (
        False,
        "",
    )
    assert state.channels[WORKS].greeting_enabled is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_provider_protocol_is_implemented(demo: LocalTenant) -> None:
    provider: Provider = demo
    assert provider.domain() == "example.co.jp"
    assert provider.directory() == demo.read().directory


def unchanged_on_open(path: Path, content: bytes, message: str) -> None:
    """Opening must fail with `message` and leave the bytes, and the folder, untouched."""
    path.write_bytes(content)
    siblings = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(TenantError, match=message):
        LocalTenant.open(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == siblings


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(path: Path) -> None:
    unchanged_on_open(
        path, b"name,email\nalice,alice@example.co.jp\n" * 50, "not a SQLite database"
    )


def test_an_empty_file_is_refused_and_untouched(path: Path) -> None:
    unchanged_on_open(path, b"", "not a SQLite database")


def test_a_truncated_tenant_is_refused_and_untouched(path: Path) -> None:
    init_demo(path, members=2_000).close()
    content = path.read_bytes()
    assert len(content) > 8192
    unchanged_on_open(path, content[: len(content) // 2], "truncated")


def test_a_tenant_from_a_newer_lwr_is_refused_and_untouched(path: Path) -> None:
    init_demo(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    unchanged_on_open(path, path.read_bytes(), "newer lwr")


def test_another_sqlite_database_is_refused_and_untouched(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    unchanged_on_open(path, path.read_bytes(), "not an lwr tenant")


def test_corruption_inside_the_file_is_a_tenant_error(path: Path) -> None:
    init_demo(path, members=2_000).close()
    content = bytearray(path.read_bytes())
    content[4096:8192] = b"\xff" * 4096  # page 2 onwards: b-tree pages of the schema
    path.write_bytes(bytes(content))
    with pytest.raises(TenantError, match=r"corrupted \(database disk image is malformed\)"):
        tenant = LocalTenant.open(path)  # the header and schema are intact: found on read
        try:
            tenant.read()
        finally:
            tenant.close()
    assert path.read_bytes() == bytes(content)


def test_readers_work_while_another_connection_holds_the_write_lock(
    demo: LocalTenant, path: Path
) -> None:
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE channels SET enabled = 1 WHERE name = 'lineworks'")
        with LocalTenant.open(path) as reader:
            started = time.perf_counter()
            state = reader.read()
            assert time.perf_counter() - started < 1.0  # no waiting for the writer
        assert not state.channels[WORKS].enabled  # the last committed state
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert demo.read().channels[WORKS].enabled


def test_a_second_writer_gives_up_with_a_clear_error(demo: LocalTenant, path: Path) -> None:
    with LocalTenant.open(path, busy_timeout=0.2) as other:
        demo._conn.execute("BEGIN IMMEDIATE")  # an apply in progress elsewhere
        try:
            with pytest.raises(TenantError, match="busy"):
                other.apply([enable(WORKS)])
        finally:
            demo._conn.execute("ROLLBACK")
        other.apply([enable(WORKS)])


# --------------------------------------------------------------------------- the demo


def test_demo_company_is_seeded_as_documented(demo: LocalTenant) -> None:
    state = demo.read()
    names = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
    assert state.directory == frozenset(f"{n}{D}" for n in names)
    line, works = state.channels[LINE], state.channels[WORKS]
    assert (
        line.enabled,
        line.all_members,
        line.auto_grant_new_members,
        line.restrict_file_transfer,
        line.greeting_enabled,
        line.greeting_message,
    ) == (True, False, False, False, False, "")
    assert line.members == {ALICE, BOB, CAROL}
    assert line.open_rooms == {ALICE: 2, CAROL: 1}
    assert (
        works.enabled,
        works.all_members,
        works.members,
        works.auto_grant_new_members,
        works.restrict_file_transfer,
        works.greeting_enabled,
    ) == (False, False, frozenset(), False, False, None)
    rooms = room_lists(demo, ALICE).member_side
    assert [(r.external, r.external_name) for r in rooms] == [
        ("U-line-001", "佐藤様"),
        ("U-line-002", "Ken Brown"),
    ]
    assert any("見積もり" in m.text for m in demo.messages())
    member_names = demo._conn.execute("SELECT name FROM members WHERE email = ?", (ALICE,))
    assert member_names.fetchone()[0] == "山田 花子"


def test_larger_demo_adds_numbered_members_and_lists_every_tenth(path: Path) -> None:
    with init_demo(path, members=40) as tenant:
        state = tenant.read()
    assert len(state.directory) == 40
    assert "member000009@example.co.jp" in state.directory
    assert "member000040@example.co.jp" in state.directory
    extra_listed = {e for e in state.channels[LINE].members if e.startswith("member")}
    assert extra_listed == {f"member{i:06d}{D}" for i in (10, 20, 30, 40)}


def test_init_demo_refuses_to_overwrite_unless_forced(path: Path) -> None:
    with init_demo(path) as tenant:
        tenant.join("zoe@example.co.jp")
    with pytest.raises(TenantError, match="already exists"):
        init_demo(path)
    with LocalTenant.open(path) as tenant:
        assert "zoe@example.co.jp" in tenant.directory()
    with init_demo(path, force=True) as tenant:
        assert "zoe@example.co.jp" not in tenant.directory()


def test_init_demo_needs_the_eight_named_members(path: Path) -> None:
    with pytest.raises(UsageError, match="at least 8"):
        init_demo(path, members=3)
    assert not path.exists()


# --------------------------------------------------------------------------- use status


def test_list_edits_are_refused_while_the_channel_is_off(demo: LocalTenant) -> None:
    error = refused(demo, [add(WORKS, ALICE)], "only be edited while the channel is on")
    assert error.change_id == "lineworks/add_member/alice@example.co.jp"
    demo.apply([disable(LINE)])
    refused(demo, [remove(LINE, BOB)], "only be edited while the channel is on")


def test_disable_hides_rooms_shows_unknown_and_keeps_history(demo: LocalTenant) -> None:
    history = demo.messages()
    demo.apply([disable(LINE)])

    assert demo.read().channels[LINE].open_rooms == {}
    lists = room_lists(demo)
    assert lists.member_side == ()
    assert {r.member for r in lists.external_side} == {UNKNOWN_MEMBER}
    assert len(lists.external_side) == 3
    after = demo.messages()
    assert [(m.text, m.sent_at) for m in after] == [(m.text, m.sent_at) for m in history]
    assert all(m.hidden for m in after)
    found = demo.messages(search="見積もり")
    assert [(m.member, m.external, m.hidden) for m in found] == [(ALICE, "U-line-001", True)]


def test_enable_after_disable_keeps_rooms_hidden_and_the_old_list(demo: LocalTenant) -> None:
    demo.apply([disable(LINE)])
    demo.apply([enable(LINE)])
    line = demo.read().channels[LINE]
    assert line.enabled and line.members == {ALICE, BOB, CAROL}
    assert line.open_rooms == {}
    assert room_lists(demo, ALICE).member_side == ()
    result = demo.contact(ALICE, "U-line-001", LINE)  # the same LINE user adds her again
    assert result.new_room
    assert [r.room_id for r in room_lists(demo, ALICE).member_side] == [result.room_id]


# --------------------------------------------------------------------------- the list


def test_adding_and_removing_members(demo: LocalTenant) -> None:
    demo.apply([remove(LINE, BOB), add(LINE, DAVE), add(LINE, ERIN)])
    assert demo.read().channels[LINE].members == {ALICE, CAROL, DAVE, ERIN}


def test_adding_someone_outside_the_directory_is_refused(demo: LocalTenant) -> None:
    error = refused(demo, [add(LINE, "mallory@evil.example")], "not in the tenant directory")
    assert "line/add_member/mallory@evil.example" in str(error)


def test_adding_a_listed_member_or_removing_an_absent_one_is_refused(demo: LocalTenant) -> None:
    refused(demo, [add(LINE, ALICE)], "already on the connected-members list")
    refused(demo, [remove(LINE, DAVE)], "not on the connected-members list")
    refused(demo, [add(LINE, DAVE), add(LINE, DAVE)], "already on the connected-members list")


def test_applying_the_same_changes_twice_is_refused(demo: LocalTenant) -> None:
    changes = [enable(WORKS), add(WORKS, ALICE)]
    demo.apply(changes)
    error = refused(demo, changes, "enabled is true on the tenant")
    assert error.change_id == "lineworks/enable_channel"


def test_a_batch_with_one_refused_change_applies_nothing(demo: LocalTenant) -> None:
    batch = [
        enable(WORKS),
        chg(Action.GRANT_ALL_MEMBERS, LINE, before=False, after=True),
        add(WORKS, ALICE),
        switch(Action.SET_FILE_RESTRICTION, LINE, True),
        disable(LINE),
        add(WORKS, "nobody@example.co.jp"),
    ]
    error = refused(demo, batch, "nobody@example.co.jp is not in the tenant directory")
    assert error.change_id == "lineworks/add_member/nobody@example.co.jp"
    assert "nothing of this batch was applied" in str(error)
    assert len(room_lists(demo).member_side) == 3


def test_five_hundred_adds_in_one_apply(path: Path) -> None:
    with init_demo(path, members=600) as tenant:
        extra = sorted(e for e in tenant.directory() if e.startswith("member"))
        unlisted = [e for e in extra if e not in tenant.read().channels[LINE].members][:500]
        tenant.apply([add(LINE, e) for e in unlisted])
        assert set(unlisted) <= tenant.read().channels[LINE].members


# --------------------------------------------------------------------------- members mode


def test_grant_all_members_covers_the_directory_and_new_hires(demo: LocalTenant) -> None:
    demo.apply([enable(WORKS), chg(Action.GRANT_ALL_MEMBERS, WORKS, before=False, after=True)])
    joined = demo.join("newbie@example.co.jp", "新人 太郎")
    state = demo.read()
    assert state.channels[WORKS].all_members
    assert state.channels[WORKS].members == state.directory
    assert joined.granted_by_all_members == (WORKS,) and joined.added_to == ()
    refused(demo, [add(WORKS, ALICE)], "'grant to all members' mode")


def test_all_members_mode_grants_nothing_while_the_channel_is_off(demo: LocalTenant) -> None:
    demo.apply([enable(WORKS), chg(Action.GRANT_ALL_MEMBERS, WORKS), disable(WORKS)])
    assert demo.join("quiet@example.co.jp").granted_by_all_members == ()
    with pytest.raises(TenantRuleError, match="channel is off"):
        demo.contact("quiet@example.co.jp", "partner@other.example", WORKS)


def test_restrict_to_listed_freezes_todays_directory(demo: LocalTenant) -> None:
    demo.apply([enable(WORKS), chg(Action.GRANT_ALL_MEMBERS, WORKS, before=False, after=True)])
    today = demo.read().directory
    demo.apply([chg(Action.RESTRICT_TO_LISTED_MEMBERS, WORKS, before=True, after=False)])
    assert demo.read().channels[WORKS].members == today  # nobody lost access at that step
    demo.join("later@example.co.jp")
    works = demo.read().channels[WORKS]
    assert not works.all_members and works.members == today
    demo.apply([remove(WORKS, BOB)])  # and the list is editable again
    assert BOB not in demo.read().channels[WORKS].members


def test_members_mode_changes_only_while_the_channel_is_on(demo: LocalTenant) -> None:
    refused(demo, [chg(Action.GRANT_ALL_MEMBERS, WORKS)], "only be changed while the channel is on")


# --------------------------------------------------------------------------- auto-grant


def test_auto_grant_adds_new_hires_to_the_list_of_an_enabled_channel(demo: LocalTenant) -> None:
    demo.apply([switch(Action.SET_AUTO_GRANT, LINE, True)])
    result = demo.join("Hana.Kobayashi@Example.co.jp", "小林 花")
    assert result.email == "hana.kobayashi@example.co.jp"
    assert result.added_to == (LINE,)
    state = demo.read()
    assert result.email in state.directory
    assert result.email in state.channels[LINE].members
    assert result.email not in state.channels[WORKS].members


def test_without_auto_grant_new_hires_get_nothing(demo: LocalTenant) -> None:
    result = demo.join("plain@example.co.jp")
    assert result.added_to == () and result.granted_by_all_members == ()
    assert "plain@example.co.jp" not in demo.read().channels[LINE].members


def test_auto_grant_does_nothing_while_the_channel_is_off(demo: LocalTenant) -> None:
    demo.apply([switch(Action.SET_AUTO_GRANT, WORKS, True)])  # settable while off
    assert demo.join("offhire@example.co.jp").added_to == ()
    demo.apply([enable(WORKS)])
    assert "offhire@example.co.jp" not in demo.read().channels[WORKS].members


def test_a_duplicate_or_malformed_join_is_refused(demo: LocalTenant) -> None:
    with pytest.raises(TenantRuleError, match="already in the directory"):
        demo.join("ALICE@example.co.jp")
    with pytest.raises(TenantRuleError, match="not a login email"):
        demo.join("alice")


# --------------------------------------------------------------------------- greeting


def turn_greeting_on(tenant: LocalTenant) -> None:
    tenant.apply(
        [
            chg(
                Action.SET_GREETING,
                LINE,
                before={"enabled": False, "message": ""},
                after={"enabled": True, "message": GREETING},
            )
        ]
    )


def test_greeting_is_sent_to_a_new_line_friend(demo: LocalTenant) -> None:
    turn_greeting_on(demo)
    result = demo.contact(BOB, "U-line-100", LINE, "高橋様")
    assert result.new_room and result.greeting_sent
    (message,) = [m for m in demo.messages() if m.room_id == result.room_id]
    assert (message.text, message.sender, message.sender_kind, message.automatic) == (
        GREETING,
        BOB,
        "greeting",
        True,
    )
    assert demo.read().channels[LINE].open_rooms[BOB] == 1


def test_no_greeting_when_it_is_off(demo: LocalTenant) -> None:
    result = demo.contact(BOB, "U-line-100", LINE)
    assert result.new_room and not result.greeting_sent
    assert [m for m in demo.messages() if m.room_id == result.room_id] == []


def test_no_greeting_on_the_lineworks_channel(demo: LocalTenant) -> None:
    turn_greeting_on(demo)
    demo.apply([enable(WORKS), add(WORKS, BOB)])
    result = demo.contact(BOB, "partner@other.example", WORKS)
    assert not result.greeting_sent
    assert demo.messages(channel=WORKS) == []
    refused(demo, [chg(Action.SET_GREETING, WORKS, after={"enabled": True})], "LINE channel only")


def test_an_empty_greeting_text_sends_nothing(demo: LocalTenant) -> None:
    demo.apply([chg(Action.SET_GREETING, LINE, after={"enabled": True})])
    assert demo.read().channels[LINE].greeting_enabled
    assert not demo.contact(BOB, "U-line-100", LINE).greeting_sent


def test_an_existing_friend_reuses_the_room_without_a_second_greeting(demo: LocalTenant) -> None:
    turn_greeting_on(demo)
    first = demo.contact(BOB, "U-line-100", LINE)
    again = demo.contact(BOB, "U-line-100", LINE)
    assert (again.room_id, again.new_room, again.greeting_sent) == (first.room_id, False, False)
    assert len(demo.messages(search=GREETING[:6])) == 1


def test_greeting_text_can_change_alone(demo: LocalTenant) -> None:
    demo.apply([chg(Action.SET_GREETING, LINE, after={"message": GREETING})])
    line = demo.read().channels[LINE]
    assert (line.greeting_enabled, line.greeting_message) == (False, GREETING)


# --------------------------------------------------------------------------- contact


def test_contact_needs_the_channel_on(demo: LocalTenant) -> None:
    with pytest.raises(TenantRuleError, match="channel is off"):
        demo.contact(ALICE, "partner@other.example", WORKS)


def test_contact_needs_authority(demo: LocalTenant) -> None:
    with pytest.raises(TenantRuleError, match="not on the line connected-members list"):
        demo.contact(DAVE, "U-line-100", LINE)
    with pytest.raises(TenantRuleError, match="not in the tenant directory"):
        demo.contact("ghost@example.co.jp", "U-line-100", LINE)
    assert room_lists(demo, DAVE).external_side == ()


def test_removed_member_keeps_rooms_but_cannot_be_added_again(demo: LocalTenant) -> None:
    demo.apply([remove(LINE, ALICE)])
    assert demo.read().channels[LINE].open_rooms[ALICE] == 2
    with pytest.raises(TenantRuleError, match="no authority"):
        demo.contact(ALICE, "U-line-100", LINE)


# --------------------------------------------------------------------------- other settings


def test_auto_grant_and_file_restriction_switches(demo: LocalTenant) -> None:
    demo.apply(
        [
            switch(Action.SET_FILE_RESTRICTION, LINE, True),
            switch(Action.SET_FILE_RESTRICTION, WORKS, True),
            switch(Action.SET_AUTO_GRANT, WORKS, True),
        ]
    )
    state = demo.read()
    assert state.channels[LINE].restrict_file_transfer
    assert state.channels[WORKS].restrict_file_transfer
    assert state.channels[WORKS].auto_grant_new_members
    assert not state.channels[LINE].auto_grant_new_members


def test_malformed_changes_are_refused(demo: LocalTenant) -> None:
    refused(demo, [chg(Action.SET_AUTO_GRANT, LINE, after="yes")], "true or false")
    refused(demo, [chg(Action.ENABLE_CHANNEL, WORKS, after=False)], "sets enabled to true")
    refused(demo, [chg(Action.ADD_MEMBER, LINE)], "needs a member email")
    refused(demo, [chg(Action.SET_GREETING, LINE, after={"text": "hi"})], "enabled` and/or")


def test_messages_search_and_channel_filter(demo: LocalTenant) -> None:
    assert {m.external_name for m in demo.messages(search="showroom")} == {"Ken Brown"}
    assert len(demo.messages(search="佐藤様")) == 2  # the external user's name matches too
    assert demo.messages(search="100%") == []  # LIKE wildcards are literal
    assert len(demo.messages(channel="line")) == 7
    with pytest.raises(UsageError):
        demo.messages(channel="slack")


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_hundred_thousand_members_round_trip(tmp_path: Path) -> None:
    tenant = init_demo(tmp_path / "big.db", members=100_000)
    try:
        tenant.apply(
            [chg(Action.GRANT_ALL_MEMBERS, LINE), chg(Action.RESTRICT_TO_LISTED_MEMBERS, LINE)]
        )  # 100k list rows
        state: TenantState = tenant.read()
        assert len(state.directory) == len(state.channels[LINE].members) == 100_000
        batch = [remove(LINE, e) for e in sorted(state.directory)[:500]]
        tenant.apply(batch)
        after = tenant.read().channels[LINE].members
    finally:
        tenant.close()
    assert after == state.channels[LINE].members - {c.target for c in batch}

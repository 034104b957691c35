"""The tables of settings (reconciler/settings.py) and actions (reconciler/actions.py) are
complete: every action and every console setting has a full row, the desired-state schema has
a property for every setting row and no other, and the state digest reads the rows without
changing its value (saved plans carry it).

Adding a console setting is one row, one schema property and one mapping per provider: these
tests fail until the row and the schema agree.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from builders import DOMAIN, LINE, LW, channel_state, desired, emails, listed, tenant

from reconciler import settings
from reconciler.actions import ACTIONS, Action, Phase, order_key
from reconciler.model import ChannelName, ChannelState, DesiredChannel
from reconciler.plan import state_digest
from reconciler.planner import diff
from reconciler.resources import load_schema
from reconciler.settings import SETTINGS, Setting

CHANNEL_DEFS = {LINE: "lineChannel", LW: "lineworksChannel"}


def test_every_action_has_a_complete_row() -> None:
    assert set(ACTIONS) == set(Action)
    for action, spec in ACTIONS.items():
        assert spec.action is action
        assert spec.title and spec.phase_title, action
        assert spec.marker in ("+", "-", "~") and spec.bucket in ("add", "change", "remove")
        assert isinstance(spec.phase, Phase) and isinstance(spec.rank, int)
        assert all(s in SETTINGS for s in spec.moves), action
        # Member changes move the list; every other change moves at least one setting.
        assert spec.member_level == (not spec.moves), action
        if spec.shows_values:  # a before → after is shown only for a value the file sets
            assert spec.fixed_after is None, action
        else:
            assert spec.fixed_after is not None, action


def test_order_within_a_phase_is_the_rank_not_the_row_position() -> None:
    ranks = [spec.rank for spec in ACTIONS.values()]
    assert len(set(ranks)) == len(ranks)
    assert ranks == sorted(ranks)  # the table is keyed in rank order, whatever the rows say
    # Three channel-level changes of one phase (tighten) run in rank order.
    have = tenant(
        emails("alice"), line=channel_state(LINE, all_members=True, auto_grant_new_members=True)
    )
    want = desired(
        DesiredChannel(
            restrict_file_transfer=True, auto_grant_new_members=False, members=listed("alice")
        )
    )
    changes = diff(want, have).changes
    tighten = [c for c in changes if c.phase is Phase.TIGHTEN]
    assert [c.action for c in tighten] == sorted(
        (c.action for c in tighten), key=lambda a: ACTIONS[a].rank
    )
    assert len(tighten) == 3 and list(changes) == sorted(changes, key=order_key)


def test_every_setting_has_a_complete_row() -> None:
    fields = {f.name for f in dataclasses.fields(ChannelState)}
    for column in ("key", "attr", "digest_key", "label"):
        values = [getattr(s, column) for s in SETTINGS]
        if column != "label":  # the two greeting settings share the console's one field
            assert len(set(values)) == len(values), column
    for s in SETTINGS:
        assert s.key and s.label and s.digest_key, s
        assert s.attr in fields, s
        assert s.channels and s.channels <= set(ChannelName), s
        if isinstance(s.default, bool):  # a switch: the console's words for both values
            assert s.on and s.off and s.on != s.off, s
            assert s.tight in (None, True, False), s
        else:
            assert s.on is None and s.off is None and s.tight is None, s
        # Every setting is moved by some action: the planner can bring it back.
        assert any(s in spec.moves for spec in ACTIONS.values()), s


def test_every_channel_state_field_is_a_setting_or_the_list() -> None:
    fields = {f.name for f in dataclasses.fields(ChannelState)}
    assert fields - {s.attr for s in SETTINGS} == {"members", "open_rooms"}


def _schema_keys(channel: ChannelName) -> set[str]:
    """The dotted keys the desired-state schema accepts under one channel."""
    schema = load_schema("desired-state.schema.json")
    defs = schema["$defs"]

    def keys(node: dict[str, Any], prefix: str) -> set[str]:
        found = set()
        for name, prop in node.get("properties", {}).items():
            if prop.get("not") == {}:
                continue  # a property the schema names only to refuse it (greeting on lineworks)
            target = defs[prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop
            nested = keys(target, f"{prefix}{name}.") if target.get("type") == "object" else set()
            found |= nested or {prefix + name}
        return found

    return keys(defs[CHANNEL_DEFS[channel]], "")


def test_the_schema_has_a_property_for_every_setting_row_and_no_other() -> None:
    for channel in ChannelName:
        assert _schema_keys(channel) == {s.key for s in settings.of(channel)}, channel


def test_greeting_is_a_line_setting_only() -> None:
    line_only = {s.key for s in SETTINGS if s.channels == {LINE}}
    assert line_only == {"greeting.enabled", "greeting.message"}


def test_the_state_digest_keeps_its_value() -> None:
    # Pinned on main before the table existed: saved plans carry this digest, so reading the
    # table's digest keys must hash exactly what the hand-written dict did.
    state = tenant(
        emails("alice", "bob", "carol"),
        line=channel_state(
            LINE,
            members=emails("alice", "bob"),
            restrict_file_transfer=True,
            greeting_enabled=True,
            greeting_message="ようこそ",
        ),
        lineworks=channel_state(LW, enabled=False, auto_grant_new_members=True),
    )
    assert state.domain == DOMAIN
    assert state_digest(state) == PINNED_DIGEST


PINNED_DIGEST = "ab76f76290324f28128ccb5c384a308282fb50e00dade401f46259c4c0909747"


def test_a_settings_row_reads_the_file_and_the_tenant_alike() -> None:
    row: Setting = settings.MEMBERS_MODE
    assert row.current(channel_state(LINE, all_members=True)) == "all"
    assert row.wanted(DesiredChannel(members=listed())) == "listed"
    assert settings.GREETING_MESSAGE.wanted(DesiredChannel()) is None  # unmanaged


def test_the_local_tenant_maps_exactly_the_settings_rows(tmp_path: Path) -> None:
    """The local tenant's one mapping is each row's `local_column`: its file has a column for
    every setting row and no other, and a new tenant starts at the rows' console defaults, so
    a new row needs no edit of the local tenant's code (only its column in the file)."""
    from reconciler.providers.local import LocalTenant
    from reconciler.providers.local.fileformat import COLUMNS, SWITCHES

    assert all(s.local_column for s in SETTINGS)
    assert {s.attr: s.local_column for s in SETTINGS} == COLUMNS
    assert {s.attr for s in SETTINGS if s.on is not None} == SWITCHES
    path = tmp_path / "tenant.db"
    with LocalTenant.open(path, create=True, domain=DOMAIN) as local:
        state = local.read()
    with closing(sqlite3.connect(path)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(channels)")}
    assert columns - {"name"} == {s.local_column for s in SETTINGS}
    for channel, ch in state.channels.items():
        for setting in SETTINGS:
            expected = setting.default if channel in setting.channels else None
            assert getattr(ch, setting.attr) == expected, (channel, setting.key)

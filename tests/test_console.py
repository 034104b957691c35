"""The console model (reconciler/console.py): the page's rules in one place, and the local
tenant, crash recovery and the lineworks bookkeeping agreeing with it."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from builders import LINE, LW, channel_state, emails, tenant

from reconciler import console
from reconciler.actions import Action, Change, change_id
from reconciler.apply import change_holds
from reconciler.cli import run
from reconciler.model import ChannelName, TenantState
from reconciler.providers.local import ChangeRefused, LocalTenant, extra_member

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"


def chg(
    action: Action,
    channel: ChannelName = LINE,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
) -> Change:
    return Change(change_id(action, channel, target), action, channel, target, before, after)


def refusal(state: TenantState, *changes: Change) -> str:
    with pytest.raises(console.RuleRefused) as caught:
        console.step(state, changes)
    return caught.value.rule


def test_the_console_refuses_a_list_edit_while_the_channel_is_off() -> None:
    off = tenant(emails("alice", "bob"), line=channel_state(enabled=False))
    assert refusal(off, chg(Action.ADD_MEMBER, target="alice@example.co.jp")) == console.LIST_FROZEN
    assert refusal(off, chg(Action.GRANT_ALL_MEMBERS)) == console.MODE_FROZEN


def test_a_refusal_says_its_rule_in_the_reader_language_and_keeps_english_for_logs() -> None:
    """What an apply's failure report shows (render.progress says the reason again)."""
    from reconciler.i18n import Messages, say

    off = tenant(emails("alice"), line=channel_state(enabled=False))
    with pytest.raises(console.RuleRefused) as caught:
        console.step(off, [chg(Action.ADD_MEMBER, target="alice@example.co.jp")])
    refused = caught.value
    assert "can only be edited while the channel is on" in str(refused)
    japanese = say(refused.reason, Messages("ja"))
    assert japanese == "利用メンバーは、連携設定が「許可」のときだけ編集できます"
    assert "利用メンバーは" in refused.said(Messages("ja"))


def test_leaving_all_members_freezes_the_directory_into_the_list() -> None:
    everyone = emails("alice", "bob", "carol")
    state = tenant(everyone, line=channel_state(all_members=True, members=everyone))
    after = console.step(state, [chg(Action.RESTRICT_TO_LISTED_MEMBERS)])
    line = after.channels[LINE]
    assert (line.all_members, line.members) == (False, everyone)
    # …and the list is editable from then on, in the same batch.
    after = console.step(
        state,
        [
            chg(Action.RESTRICT_TO_LISTED_MEMBERS),
            chg(Action.REMOVE_MEMBER, target="carol@example.co.jp"),
        ],
    )
    assert after.channels[LINE].members == emails("alice", "bob")


def test_the_greeting_exists_on_line_only() -> None:
    greeting = chg(Action.SET_GREETING, LW, after={"enabled": True})
    assert refusal(tenant(emails("alice")), greeting) == console.GREETING_LINE_ONLY


def test_a_link_turns_the_channel_on_only_under_the_lineworks_api_rules() -> None:
    off = tenant(emails("alice"), lineworks=channel_state(LW, enabled=False))
    link = chg(Action.ADD_MEMBER, LW, target="Alice@Example.co.jp")
    observed = console.step(off, [link], console.OBSERVE).channels[LW]
    assert (observed.enabled, observed.members) == (False, emails("alice"))
    api = console.step(off, [link], console.LINEWORKS_API).channels[LW]
    assert (api.enabled, api.members) == (True, emails("alice"))


def test_change_holds_is_applying_it_changes_nothing() -> None:
    state = tenant(emails("alice", "bob"), line=channel_state(members=emails("alice")))
    assert change_holds(chg(Action.ADD_MEMBER, target="ALICE@example.co.jp"), state)
    assert not change_holds(chg(Action.ADD_MEMBER, target="bob@example.co.jp"), state)
    assert change_holds(chg(Action.REMOVE_MEMBER, target="carol@example.co.jp"), state)
    assert change_holds(chg(Action.SET_GREETING, after={"message": ""}), state)
    assert not change_holds(chg(Action.SET_AUTO_GRANT, after=1), state)  # malformed: never


def test_100k_member_changes_step_in_linear_time() -> None:
    def seconds(n: int) -> float:
        directory = frozenset(extra_member(i) for i in range(2 * n))
        state = tenant(directory, line=channel_state(members=frozenset(list(directory)[:n])))
        adds = [
            chg(Action.ADD_MEMBER, target=e)
            for e in sorted(directory - state.channels[LINE].members)
        ]
        start = time.perf_counter()
        after = console.step(state, adds)
        assert after.channels[LINE].members == directory
        return time.perf_counter() - start

    small, big = min(seconds(10_000) for _ in range(3)), min(seconds(100_000) for _ in range(3))
    assert big < 30 * small  # ten times the changes: about ten times the time, never 100


def test_the_local_tenant_refuses_with_the_models_reason(tmp_path: Path) -> None:
    from reconciler.providers.local import init_demo

    with (
        init_demo(tmp_path / "t.db") as t,
        pytest.raises(ChangeRefused, match="only be edited while the channel is on"),
    ):
        t.apply([chg(Action.ADD_MEMBER, LW, target="alice@example.co.jp")])


def _older_lwr_file(path: Path) -> None:
    """What an lwr before lower-casing domains made of `--domain Example.CO.JP`."""
    with closing(sqlite3.connect(path)) as conn:
        for table, column in (("members", "email"), ("connected", "email"), ("rooms", "member")):
            conn.execute(
                f"UPDATE {table} SET {column} = replace({column}, "
                "'@example.co.jp', '@Example.CO.JP')"
            )
        conn.execute("UPDATE meta SET domain = 'Example.CO.JP'")
        conn.commit()


def test_a_tenant_with_a_mixed_case_domain_from_an_older_lwr_converges(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _older_lwr_file(demo / "tenant.db")
    with LocalTenant.open(demo / "tenant.db") as t:
        state = t.read()
    assert state.domain == "example.co.jp"
    assert "alice@example.co.jp" in state.directory
    assert state.channels[LINE].members == emails("alice", "bob", "carol")
    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    assert "Apply complete: 7 changes applied" in capsys.readouterr().out
    assert run(["plan", str(EXAMPLE), "--detailed-exitcode"]) == 0
    assert "No changes" in capsys.readouterr().out
    assert run(["tenant", "contact", "dave@example.co.jp", "U-new", "--channel", "line"]) == 0
    assert run(["tenant", "join", "ALICE@example.co.jp"]) == 1  # already there, any case

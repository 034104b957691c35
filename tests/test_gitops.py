"""GitOps safety through the real CLI: saved plans, replay, show-plan, and every refusal path.

Each refusal test proves nothing changed: the tenant database dumps the same before and after,
and no apply run was recorded.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import run
from reconciler.errors import TenantError
from reconciler.model import ChannelName
from reconciler.plan import state_digest
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalTenant
from reconciler.resources import load_schema
from reconciler.store import StateLocation, open_store
from reconciler.workflow import plan_desired

HEAD = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
ADD_DAVE = HEAD + (
    "  line:\n    members:\n      policy: additive\n      include: [dave@example.co.jp]\n"
)
DEMO_LIST = HEAD + (
    "  line:\n    members:\n      policy: exact\n      include: "
    "[alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]\n"
)
LINE_OFF = HEAD + "  line:\n    enabled: false\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A seeded demo tenant in tmp_path, the default for every command (LWR_TENANT); its
    state in the default SQLite file beside it, then in PostgreSQL (LWR_STATE)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    monkeypatch.delenv("LWR_STATE", raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("LWR_STATE", request.getfixturevalue("pg_state"))
    monkeypatch.setenv("LWR_ACTOR", "ci-bot")
    assert run(["tenant", "init", "--demo"]) == 0
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def fingerprint(db: Path) -> list[str]:
    """Every row of every table of a local tenant: equal dumps mean nothing changed."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def state_of(root: Path) -> StateLocation:
    """The state store the commands use: LWR_STATE, else state.db beside the tenant."""
    return StateLocation.resolve(os.environ.get("LWR_STATE"), f"local:{root}/tenant.db")


def runs(root: Path) -> int:
    """Apply runs recorded in the tenant's state store (0 when there is none)."""
    state = state_of(root)
    if not state.exists:
        return 0
    with closing(state.open()) as store:
        return len(store.runs())


def refused(root: Path, argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 3) -> str:
    """Run `argv`, expect exit `code`, prove the tenant and the journal untouched; stderr."""
    before, runs_before = fingerprint(root / "tenant.db"), runs(root)
    assert run(argv) == code
    err = capsys.readouterr().err
    assert fingerprint(root / "tenant.db") == before
    assert runs(root) == runs_before
    assert "Traceback" not in err
    return err


def line_members(root: Path) -> frozenset[str]:
    with LocalTenant.open(root / "tenant.db") as t:
        return t.read().channels[ChannelName.LINE].members


# --- saved plans -----------------------------------------------------------------------------


def test_a_saved_plan_applies_once_and_a_replay_is_refused_naming_who_and_when(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    add = write(demo / "add.yaml", ADD_DAVE)
    assert run(["plan", add, "--out", str(plan_json)]) == 0
    assert run(["apply", str(plan_json), "--auto-approve"]) == 0
    assert "dave@example.co.jp" in line_members(demo)
    # Someone takes dave off again: the tenant is exactly as when the plan was made, so only
    # the journal can tell that this plan already ran.
    assert run(["apply", write(demo / "undo.yaml", DEMO_LIST), "--auto-approve"]) == 0
    capsys.readouterr()
    err = refused(demo, ["apply", str(plan_json), "--auto-approve"], capsys)
    assert "was applied to example.co.jp already" in err and "by ci-bot" in err
    assert "dave@example.co.jp" not in line_members(demo)
    assert run(["show-plan", str(plan_json), "--tenant", f"local:{demo}/tenant.db"]) == 3
    assert "applied to example.co.jp already" in capsys.readouterr().err


def test_a_desired_file_may_be_applied_again_the_replay_guard_is_for_saved_plans(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add, undo = write(demo / "add.yaml", ADD_DAVE), write(demo / "undo.yaml", DEMO_LIST)
    for _ in range(2):
        assert run(["apply", add, "--auto-approve"]) == 0
        assert run(["apply", undo, "--auto-approve"]) == 0
    assert runs(demo) == 4


def test_a_stale_saved_plan_is_refused_and_nothing_changes(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    assert run(["tenant", "join", "newbie@example.co.jp"]) == 0
    capsys.readouterr()
    err = refused(demo, ["apply", str(plan_json), "--auto-approve"], capsys)
    assert "changed since the plan was made" in err and "lwr plan" in err


def test_a_plan_made_against_an_empty_tenant_goes_stale_when_the_tenant_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    LocalTenant.open(tmp_path / "tenant.db", create=True).close()  # no members, all off
    on = write(tmp_path / "on.yaml", HEAD + "  line:\n    enabled: true\n")
    assert run(["plan", on, "--out", "plan.json"]) == 0
    assert json.loads(Path("plan.json").read_text(encoding="utf-8"))["state_digest"]
    assert run(["tenant", "join", "first@example.co.jp"]) == 0
    capsys.readouterr()
    err = refused(tmp_path, ["apply", "plan.json", "--auto-approve"], capsys)
    assert "changed since the plan was made" in err


def test_the_state_digest_of_an_empty_tenant_pins_it() -> None:
    from builders import channel_state, tenant

    empty = tenant(
        frozenset(),
        line=channel_state(enabled=False),
        lineworks=channel_state(ChannelName.LINEWORKS, enabled=False),
    )
    digest = state_digest(empty)
    assert len(digest) == 64
    one = frozenset({"first@example.co.jp"})
    assert (
        state_digest(
            tenant(
                one,
                line=empty.channels[ChannelName.LINE],
                lineworks=empty.channels[ChannelName.LINEWORKS],
            )
        )
        != digest
    )
    assert (
        state_digest(
            tenant(
                frozenset(),
                lineworks=empty.channels[ChannelName.LINEWORKS],
                line=channel_state(enabled=True),
            )
        )
        != digest
    )
    other = type(empty)("other.co.jp", empty.directory, empty.channels)
    assert state_digest(other) != digest


def test_show_plan_renders_every_format_without_the_tenant(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    capsys.readouterr()
    (demo / "tenant.db").rename(demo / "elsewhere.db")  # any tenant access would now fail
    assert run(["show-plan", str(plan_json)]) == 0
    assert "add member dave@example.co.jp" in capsys.readouterr().out
    assert run(["show-plan", str(plan_json), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads(plan_json.read_text(encoding="utf-8"))
    jsonschema.validate(shown, load_schema("plan.schema.json"))
    assert run(["show-plan", str(plan_json), "--format", "markdown"]) == 0
    assert "### lwr plan for `example.co.jp`" in capsys.readouterr().out


def test_show_plan_with_tenant_says_current_or_stale(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    tenant_uri = f"local:{demo}/tenant.db"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    capsys.readouterr()
    assert run(["show-plan", str(plan_json), "--tenant", tenant_uri]) == 0
    assert "apply would accept it" in capsys.readouterr().err
    assert not (demo / "state.db").exists()  # a read-only check creates no state store
    assert run(["tenant", "join", "newbie@example.co.jp"]) == 0
    capsys.readouterr()
    assert run(["show-plan", str(plan_json), "--tenant", tenant_uri]) == 3
    assert "changed since the plan was made" in capsys.readouterr().err


def test_an_edited_saved_plan_is_refused(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_json = demo / "plan.json"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    data = json.loads(plan_json.read_text(encoding="utf-8"))
    data["changes"][0]["target"] = "heidi@example.co.jp"
    data["changes"][0]["id"] = "line/add_member/heidi@example.co.jp"
    plan_json.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    err = refused(demo, ["apply", str(plan_json), "--auto-approve"], capsys)  # exit 3
    assert "edited after it was made" in err


def test_a_plan_for_another_tenant_is_refused(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    assert run(["tenant", "init", "--demo", "--tenant", f"local:{demo}/other/tenant.db"]) == 0
    capsys.readouterr()
    other = demo / "other"
    before = fingerprint(other / "tenant.db")
    assert (
        run(["apply", str(plan_json), "--auto-approve", "--tenant", f"local:{other}/tenant.db"])
        == 3
    )
    assert "the plan was made for" in capsys.readouterr().err
    assert fingerprint(other / "tenant.db") == before


# --- refusal paths of a desired file -----------------------------------------------------------


@pytest.mark.parametrize("argv", [["plan"], ["drift"], ["apply", "--auto-approve"]])
def test_wrong_tenant_is_refused_by_every_command(
    demo: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    other = write(demo / "other.yaml", ADD_DAVE.replace("example.co.jp\n", "other.co.jp\n", 1))
    err = refused(demo, [argv[0], other, *argv[1:]], capsys)
    assert f"{other}:2:1" in err and "other.co.jp" in err and "example.co.jp" in err


def test_channel_off_needs_allow_destructive(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = write(demo / "off.yaml", LINE_OFF)
    err = refused(demo, ["apply", off, "--auto-approve"], capsys)
    assert "line/disable_channel" in err and "--allow-destructive" in err
    # No threshold governs turning a channel off: only the flag is offered, not a file change.
    assert "max_member_removals" not in err and "without --allow-destructive" not in err


def test_removals_over_the_count_threshold_name_numbers_and_where_to_change_them(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(
        demo / "few.yaml",
        DEMO_LIST.replace(
            "[alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]", "[alice@example.co.jp]"
        )
        + "safety:\n  max_member_removals: 1\n",
    )
    err = refused(demo, ["apply", f, "--auto-approve"], capsys)
    assert "line: removing 2 members exceeds the safety threshold" in err
    assert "2 of 3 listed (66.7 %) is more than 1 member (safety.max_member_removals)" in err
    assert f"`safety:` block of {f}" in err and "--allow-destructive" in err


def test_removals_over_the_percentage_threshold_name_numbers_and_where_to_change_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    # 80 members: alice, bob, carol and every tenth numbered member are on the LINE list (11).
    assert run(["tenant", "init", "--demo", "--members", "80"]) == 0
    f = write(
        tmp_path / "one.yaml",
        DEMO_LIST.replace(
            "[alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]", "[alice@example.co.jp]"
        ),
    )
    capsys.readouterr()
    err = refused(tmp_path, ["apply", f, "--auto-approve"], capsys)
    assert (
        "10 of 11 listed (90.9 %) is more than 20 % of the list "
        "(safety.max_member_removal_percent) and more than 5 members"
    ) in err
    assert run(["apply", f, "--auto-approve", "--allow-destructive"]) == 0
    assert line_members(tmp_path) == {"alice@example.co.jp"}


@pytest.mark.parametrize(
    "body",
    [
        LINE_OFF,
        DEMO_LIST.replace(
            "[alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]", "[alice@example.co.jp]"
        ),
    ],
    ids=["turn-off", "removals"],
)
def test_a_protected_channel_refuses_destructive_changes_even_when_allowed(
    demo: Path, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    f = write(
        demo / "p.yaml", body + "safety:\n  max_member_removals: 1\n  protect_channels: [line]\n"
    )
    err = refused(demo, ["apply", f, "--auto-approve", "--allow-destructive"], capsys)
    assert "safety.protect_channels" in err and "--allow-destructive cannot override" in err
    assert f"`safety:` block of {f}" in err


def test_a_policy_deny_refuses_plan_apply_and_drift(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(demo / "all.yaml", HEAD + "  lineworks:\n    enabled: true\n    members: all\n")
    for argv in (["plan", f, "--out", "plan.json"], ["apply", f, "--auto-approve"], ["drift", f]):
        err = refused(demo, argv, capsys)
        assert "file-restriction-when-all-members" in err
        assert f"{f}:4:3: external_messaging.lineworks" in err
    assert not (demo / "plan.json").exists()  # a denied plan is never saved for apply


def test_a_lock_held_refuses_a_saved_plan_too(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_json = demo / "plan.json"
    assert run(["plan", write(demo / "add.yaml", ADD_DAVE), "--out", str(plan_json)]) == 0
    capsys.readouterr()
    key = f"local:{(demo / 'tenant.db').resolve()}"
    with closing(state_of(demo).open()) as store, store.lock(key, "apply"):
        err = refused(demo, ["apply", str(plan_json), "--auto-approve"], capsys)
    assert "apply" in err


# --- a failed or partial tenant read is an error, never "absent" ------------------------------

DAMAGE: dict[str, Callable[[sqlite3.Connection], None]] = {
    # The list query fails after the directory and settings were read: a partial read.
    "list unreadable": lambda c: c.execute("ALTER TABLE connected RENAME COLUMN email TO mail"),
    "channel row gone": lambda c: c.execute("DELETE FROM channels WHERE name = 'lineworks'"),
    "rooms unreadable": lambda c: c.execute("ALTER TABLE rooms RENAME COLUMN hidden TO gone"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("argv", [["plan"], ["drift"], ["apply", "--auto-approve"]])
def test_a_failed_tenant_read_is_exit_1_and_never_plans_removals(
    demo: Path, capsys: pytest.CaptureFixture[str], damage: str, argv: list[str]
) -> None:
    conn = sqlite3.connect(demo / "tenant.db")
    conn.execute("PRAGMA foreign_keys = OFF")
    DAMAGE[damage](conn)
    conn.commit()
    conn.close()
    exact = write(
        demo / "exact.yaml", DEMO_LIST.replace("carol@example.co.jp", "dave@example.co.jp")
    )
    before = fingerprint(demo / "tenant.db")
    assert run([argv[0], exact, *argv[1:]]) == 1
    out, err = capsys.readouterr()
    assert "remove member" not in out and "not in the file" not in out
    assert "local tenant" in err or "damaged" in err
    assert fingerprint(demo / "tenant.db") == before
    assert runs(demo) == 0


def test_a_provider_read_failure_stops_planning(demo: Path) -> None:
    class FailingRead(Provider):
        """The local tenant with a read that fails half-way (an API page that errors)."""

        def __init__(self, inner: LocalTenant) -> None:
            self.inner = inner
            self.key = inner.key
            self.execution = inner.execution

        def read(self) -> None:
            raise TenantError("page 2 of the members list: HTTP 500")

    exact = write(demo / "exact.yaml", DEMO_LIST)
    with LocalTenant.open(demo / "tenant.db") as inner, pytest.raises(TenantError, match="500"):
        plan_desired(exact, FailingRead(inner))  # type: ignore[arg-type]


def test_the_store_remembers_only_finished_runs_of_a_plan_per_tenant(state_uri: str) -> None:
    with closing(open_store(state_uri, "local:/a.db")) as store:
        assert store.applied_run("local:/a.db", "p1") is None
        failed = store.begin_run("local:/a.db", "p1", "ci-bot")
        store.finish_run(failed.run_id, "failed")
        store.begin_run("local:/a.db", "p1", "ci-bot")  # still running (or crashed)
        assert store.applied_run("local:/a.db", "p1") is None
        done = store.begin_run("local:/a.db", "p1", "alice")
        store.finish_run(done.run_id, "done")
        found = store.applied_run("local:/a.db", "p1")
        assert found is not None and found.run_id == done.run_id and found.actor == "alice"
        assert found.finished_at is not None
        assert store.applied_run("local:/b.db", "p1") is None
        assert store.applied_run("local:/a.db", "p2") is None

"""The local tenant's org chart: the demo company's departments and groups, the upgrade of a
tenant file written before they existed, and the HR changes of `lwr tenant join/move/leave/
group` through the real CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from localdb import room_lists

from reconciler.cli import run
from reconciler.errors import TenantError
from reconciler.model import ChannelName
from reconciler.orgchart import OrgChart
from reconciler.providers.local import (
    DEMO_GROUPS,
    DEMO_UNITS,
    SCHEMA_VERSION,
    LocalTenant,
    demo_directory,
    demo_groups,
    demo_units,
    init_demo,
)

LINE, WORKS = ChannelName.LINE, ChannelName.LINEWORKS
#: A tenant file `lwr tenant init --demo --members 12`, `tenant join new@…`, `tenant contact
#: bob@… U-line-009 --channel line` and `apply examples/company.yaml` wrote before org units
#: existed (tenant schema version 1).
V1_TENANT = Path(__file__).with_name("tenants") / "v1-demo.db"
LWR = str(Path(sys.executable).parent / "lwr")


def chart(path: Path) -> OrgChart:
    with LocalTenant.open(path, readonly=True) as tenant:
        return tenant.org_chart()


def paths_of(org: OrgChart) -> dict[str, frozenset[str]]:
    """Each unit's direct members, by path."""
    return {org.path(uid): org.unit_members.get(uid, frozenset()) for uid in org.units}


def unit_of(org: OrgChart, path: str) -> str:
    return next(uid for uid in org.units if org.path(uid) == path)


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    # SQLite quotes a renamed table's name in its stored CREATE statement.
    return [(kind, name, (sql or "").replace('"rooms"', "rooms")) for kind, name, sql in rows]


# -- the demo company -------------------------------------------------------------------------


@pytest.mark.parametrize("members", [8, 1_234])
def test_the_demo_company_has_departments_and_groups(tmp_path: Path, members: int) -> None:
    init_demo(tmp_path / "t.db", members=members).close()
    org = chart(tmp_path / "t.db")
    assert sorted(org.path(uid) for uid in org.units) == sorted(DEMO_UNITS)
    assert paths_of(org) == {p: frozenset(e) for p, e in demo_units(members).items()}
    assert {n: g.members for n, g in org.groups.items()} == {
        n: frozenset(e) for n, e in demo_groups(members).items()
    }
    assert set(org.groups) == set(DEMO_GROUPS)
    everyone = set(demo_directory(members))
    placed = set().union(*org.unit_members.values())
    assert placed == everyone  # nobody is outside every department
    sales = org.members_under(unit_of(org, "営業部"))
    assert org.unit_members[unit_of(org, "営業部/東日本")] < sales
    assert "heidi@example.co.jp" in sales and "heidi@example.co.jp" in org.members_under(
        unit_of(org, "総務部")
    )  # one member, two units
    if members > 1_000:
        assert 0.4 < len(sales) / members < 0.6  # sales holds half the company


def test_two_units_share_a_name_under_different_parents_only(tmp_path: Path) -> None:
    init_demo(tmp_path / "t.db").close()
    org = chart(tmp_path / "t.db")
    assert sorted(org.path(u) for u in org.units if org.units[u].name == "東日本") == [
        "営業部/東日本",
        "開発部/東日本",
    ]
    with closing(sqlite3.connect(tmp_path / "t.db")) as conn:
        for parent in ("NULL", "1"):  # a second 営業部 at the top, a second 東日本 under it
            name = "営業部" if parent == "NULL" else "東日本"
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(
                    f"INSERT INTO orgunits (name, parent_id) VALUES (?, {parent})", (name,)
                )


def test_the_org_chart_costs_a_query_per_table_at_any_size(tmp_path: Path) -> None:
    init_demo(tmp_path / "t.db", members=20_000).close()
    statements: list[str] = []
    with LocalTenant.open(tmp_path / "t.db", readonly=True) as tenant:
        assert tenant.READS_ORG_CHART
        tenant._conn.set_trace_callback(statements.append)
        org = tenant.org_chart()
    assert sum(len(m) for m in org.unit_members.values()) > 20_000
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 4, selects  # the domain, units, unit members, groups
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT"  # one snapshot


# -- a tenant file of an older lwr ------------------------------------------------------------


def test_a_tenant_file_of_the_previous_version_opens_and_keeps_everything(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    shutil.copy(V1_TENANT, old)
    content = old.read_bytes()
    with LocalTenant.open(old, readonly=True) as tenant:  # read-only: read as it is
        before = tenant.read()
        assert tenant.org_chart() == OrgChart()
    assert old.read_bytes() == content
    assert len(before.directory) == 13 and "new@example.co.jp" in before.directory
    rooms_before = room_lists(old)

    with LocalTenant.open(old) as tenant:  # writable: upgraded in place
        assert tenant.read() == before
        assert tenant.org_chart() == OrgChart()
        assert [m.text for m in tenant.messages()] == [
            m.text for m in LocalTenant.open(V1_TENANT, readonly=True).messages()
        ]
    assert room_lists(old) == rooms_before
    init_demo(tmp_path / "new.db").close()
    assert schema_of(old) == schema_of(tmp_path / "new.db")
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_upgrade_that_would_break_references_leaves_the_file_as_it_was(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    shutil.copy(V1_TENANT, old)
    with closing(sqlite3.connect(old)) as conn:  # foreign keys off: SQLite lets it in
        conn.execute("INSERT INTO connected (channel, email) VALUES ('line', 'ghost@x.jp')")
        conn.commit()
    with pytest.raises(TenantError, match=r"cannot upgrade local tenant .* the file was left as"):
        LocalTenant.open(old)
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM rooms").fetchone()[0] == 4
    with LocalTenant.open(old, readonly=True) as tenant:
        assert len(tenant.read().directory) == 13


def test_an_upgraded_tenant_takes_hr_changes_and_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.db"
    shutil.copy(V1_TENANT, old)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{old}")
    monkeypatch.delenv("LWR_STATE", raising=False)
    assert run(["tenant", "join", "x@example.co.jp", "--orgunit", "営業部"]) == 1
    assert "no org unit '営業部' in the tenant (it has none)" in capsys.readouterr().err
    assert run(["tenant", "leave", "new@example.co.jp"]) == 0
    assert "off the connected-members list of: lineworks" in capsys.readouterr().out
    with LocalTenant.open(old, readonly=True) as tenant:
        state = tenant.read()
    assert "new@example.co.jp" not in state.directory | state.channels[WORKS].members
    example = Path(__file__).parents[1] / "examples" / "company.yaml"
    assert run(["plan", str(example), "--detailed-exitcode"]) == 0  # applied, still in sync


# -- HR changes through the CLI ---------------------------------------------------------------


def test_a_hire_joins_an_org_unit_by_path_or_unique_name(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["tenant", "join", "new1@example.co.jp", "--orgunit", "営業部/東日本"]) == 0
    assert (
        run(["tenant", "join", "new2@example.co.jp", "--orgunit", "西日本", "--orgunit", "総務部"])
        == 0
    )
    out = capsys.readouterr().out
    assert "new1@example.co.jp joined 営業部/東日本." in out
    assert "new2@example.co.jp joined 営業部/西日本, 総務部." in out
    org = chart(demo / "tenant.db")
    assert "new1@example.co.jp" in org.unit_members[unit_of(org, "営業部/東日本")]
    assert org.units_of("new2@example.co.jp") == ("営業部/西日本", "総務部")
    assert "new1@example.co.jp" in org.members_under(unit_of(org, "営業部"))


def test_an_unknown_or_ambiguous_org_unit_refuses_the_hire(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["tenant", "join", "new@example.co.jp", "--orgunit", "東日本"]) == 1
    err = capsys.readouterr().err
    assert "org unit '東日本' is ambiguous" in err and "営業部/東日本, 開発部/東日本" in err
    assert run(["tenant", "join", "new@example.co.jp", "--orgunit", "営業"]) == 1
    assert "no org unit '営業' in the tenant; did you mean '営業部'" in capsys.readouterr().err
    assert run(["tenant", "join", "new@example.co.jp", "--orgunit", "開発部/西日本"]) == 1
    assert "did you mean" in capsys.readouterr().err
    with LocalTenant.open(demo / "tenant.db", readonly=True) as tenant:
        assert "new@example.co.jp" not in tenant.directory()  # refused whole


def test_a_move_replaces_the_members_org_units_and_no_list(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalTenant.open(demo / "tenant.db", readonly=True) as tenant:
        lists = tenant.read().channels
    assert run(["tenant", "move", "heidi@example.co.jp", "--orgunit", "開発部/東日本"]) == 0
    assert (
        "heidi@example.co.jp moved to 開発部/東日本 (from 営業部/西日本, 総務部)."
        in capsys.readouterr().out
    )
    org = chart(demo / "tenant.db")
    assert org.units_of("heidi@example.co.jp") == ("開発部/東日本",)
    with LocalTenant.open(demo / "tenant.db", readonly=True) as tenant:
        assert tenant.read().channels == lists
    assert run(["tenant", "move", "nobody@example.co.jp", "--orgunit", "総務部"]) == 1
    assert "nobody@example.co.jp is not in the tenant directory" in capsys.readouterr().err
    assert run(["tenant", "move", "heidi@example.co.jp"]) == 1
    assert "Missing option '--orgunit'" in capsys.readouterr().err


def test_a_member_who_leaves_is_out_of_directory_lists_units_groups_and_rooms(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant_db = demo / "tenant.db"
    assert run(["tenant", "group", "partner-support", "--add", "alice@example.co.jp"]) == 0
    capsys.readouterr()
    result = subprocess.run(
        [LWR, "tenant", "leave", "ALICE@example.co.jp"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "alice@example.co.jp left the company.",
        "  off the connected-members list of: line",
        "  out of org units: 営業部/東日本",
        "  out of groups: partner-support",
        "  2 rooms with outsiders closed: they see the member as unknown; the history stays"
        " in Admin Audit",
    ]
    with LocalTenant.open(tenant_db, readonly=True) as tenant:
        state, org = tenant.read(), tenant.org_chart()
        history = [m for m in tenant.messages() if m.member == "alice@example.co.jp"]
    assert "alice@example.co.jp" not in state.directory
    assert all("alice@example.co.jp" not in ch.members for ch in state.channels.values())
    assert "alice@example.co.jp" not in state.channels[LINE].open_rooms
    assert org.units_of("alice@example.co.jp") == ()
    assert "alice@example.co.jp" not in org.groups["partner-support"].members
    rooms = room_lists(tenant_db, "alice@example.co.jp")
    assert rooms.member_side == () and len(rooms.external_side) == 2
    assert {r.member for r in rooms.external_side} == {"unknown"}
    assert len(history) == 4 and all(m.hidden for m in history)  # kept for Admin Audit

    assert run(["tenant", "leave", "alice@example.co.jp"]) == 1
    assert "alice@example.co.jp is not in the tenant directory" in capsys.readouterr().err
    # Rehired: a new member, in no list until someone puts them there.
    assert run(["tenant", "join", "alice@example.co.jp", "--orgunit", "総務部"]) == 0
    assert run(["tenant", "contact", "alice@example.co.jp", "U-line-001", "--channel", "line"]) == 1


def test_a_member_leaves_a_list_granted_to_all_members(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    all_members = demo / "all.yaml"
    all_members.write_text(
        "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  lineworks:\n"
        "    enabled: true\n    restrict_file_transfer: true\n    members: all\n",
        encoding="utf-8",
    )
    assert run(["apply", str(all_members), "--auto-approve"]) == 0
    assert run(["tenant", "leave", "bob@example.co.jp"]) == 0
    assert "off the connected-members list of: line, lineworks" in capsys.readouterr().out
    assert run(["plan", str(all_members), "--detailed-exitcode"]) == 0


def test_group_members_are_added_and_removed(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tenant", "group", "partner-support", "--add", "carol@example.co.jp"]
    assert run([*argv, "--remove", "bob@example.co.jp"]) == 0
    out = capsys.readouterr().out
    assert "carol@example.co.jp joined group partner-support." in out
    assert "bob@example.co.jp left group partner-support." in out
    members = chart(demo / "tenant.db").groups["partner-support"].members
    assert members == {"carol@example.co.jp", "erin@example.co.jp", "heidi@example.co.jp"}
    assert run(argv) == 0
    assert "Group partner-support is unchanged." in capsys.readouterr().out
    assert run(["tenant", "group", "partner-suport", "--add", "carol@example.co.jp"]) == 1
    assert "did you mean 'partner-support'" in capsys.readouterr().err
    assert run(["tenant", "group", "partner-support"]) == 1
    assert run(["tenant", "group", "managers", "--add", "ghost@example.co.jp"]) == 1
    assert "ghost@example.co.jp is not in the tenant directory" in capsys.readouterr().err


def test_hr_messages_are_said_in_japanese(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--lang", "ja", "tenant", "join", "new@example.co.jp", "--orgunit", "総務部"]) == 0
    assert run(["--lang", "ja", "tenant", "move", "new@example.co.jp", "--orgunit", "開発部"]) == 0
    assert run(["--lang", "ja", "tenant", "leave", "carol@example.co.jp"]) == 0
    out = capsys.readouterr().out
    assert "new@example.co.jp" in out and "joined" not in out and "moved" not in out
    assert "left the company" not in out and "総務部" in out


def test_show_summarises_the_org_chart_when_asked(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["show"]) == 0
    assert "Org chart" not in capsys.readouterr().out  # not read unless asked
    assert run(["show", "--org-chart"]) == 0
    out = capsys.readouterr().out
    assert (
        "Org chart: 6 org units, 2 groups\n"
        "  営業部: 5 members (1 directly)\n    東日本: 2 members\n" in out
    )
    assert "  開発部: 2 members (1 directly)\n    東日本: 1 member\n" in out
    assert "  group partner-support: 3 members\n" in out
    assert run(["show", "--org-chart", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["org_chart"]
    assert [u["path"] for u in data["org_units"]][:3] == [
        "営業部",
        "営業部/東日本",
        "営業部/西日本",
    ]
    assert {u["path"]: u["members"] for u in data["org_units"]}["営業部"] == 5
    assert data["groups"] == [
        {"name": "managers", "members": 3},
        {"name": "partner-support", "members": 3},
    ]

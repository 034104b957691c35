"""The `lineworks:` org chart (org units, their members, groups) read from the emulated
Directory API through real HTTP: whole over many pages or refused, on the limiters and retry
budget of every read, its cost said in the plan, and never read by a plan without selectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator import Fault, Limits
from emulator.harness import CHART_SCOPE, Harness, emulated

from reconciler.cli import run
from reconciler.desired import load_desired
from reconciler.errors import TenantError
from reconciler.i18n import Messages, say
from reconciler.model import DesiredState, TenantState
from reconciler.orgchart import OrgChart
from reconciler.providers.lineworks import LineWorksTenant
from reconciler.providers.local import init_demo

D = "example.co.jp"
CHART_OPS = ("GET /orgunits", "GET /groups")  # …/groups/{groupId}/members matches the second


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> TenantState:
    """The demo company of 20 members."""
    tenant = init_demo(tmp_path_factory.mktemp("demo") / "tenant.db", members=20)
    try:
        return tenant.read()
    finally:
        tenant.close()


@pytest.fixture
def h(tmp_path: Path, demo_state: TenantState) -> Iterator[Harness]:
    """The demo company with its departments and groups."""
    with emulated(tmp_path, demo_state, departments=True) as harness:
        yield harness


def chart_requests(h: Harness, status: int | None = None) -> int:
    """Requests the emulator saw to the org-unit and group lists."""
    return sum(h.emulator.count(status, op) for op in CHART_OPS)


def by_path(chart: OrgChart) -> dict[str, frozenset[str]]:
    """Each unit's direct members, by path."""
    return {chart.path(uid): chart.unit_members.get(uid, frozenset()) for uid in chart.units}


def unit_id(chart: OrgChart, path: str) -> str:
    return next(uid for uid in chart.units if chart.path(uid) == path)


def test_the_demo_departments_and_groups_are_read_with_their_members(h: Harness) -> None:
    with h.provider(scope=CHART_SCOPE) as provider:
        provider.read()
        users_read = h.emulator.count(None, "GET /users")
        chart = provider.org_chart()
    units = by_path(chart)
    assert sorted(units) == ["営業部", "営業部/東日本", "営業部/西日本", "総務部", "開発部"]
    assert units["営業部"] == {f"alice@{D}"}
    assert {f"bob@{D}", f"carol@{D}"} <= units["営業部/東日本"]
    sales = chart.members_under(unit_id(chart, "営業部"))
    assert sales == units["営業部"] | units["営業部/東日本"] | units["営業部/西日本"]
    # A group holds erin by name and 総務部 as a unit; all-support holds that group.
    support = chart.groups["partner-support"].members
    assert support == {f"erin@{D}"} | units["総務部"]
    assert chart.groups["all-support"].members == support
    # Who is in which unit came with the GET /users the read already made.
    assert h.emulator.count(None, "GET /users") == users_read


def test_without_a_read_first_the_chart_reads_the_users_itself(h: Harness) -> None:
    before = h.emulator.count(200, "GET /users")
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart()
        assert provider.directory() >= chart.members_under(unit_id(chart, "営業部"))
    assert h.emulator.count(200, "GET /users") == before + 2  # the chart's, then directory()


def _big(h: Harness) -> None:
    """250 more units (3 pages), 150 more groups (2 pages), one of 250 members (3 pages)."""
    org, tenant = h.tenant.org, h.tenant
    people = [tenant.add_user(f"p{i:03d}@{D}") for i in range(250)]
    for i in range(250):
        org.add_unit(f"課{i:03d}", "開発部")
        org.place(people[i].email, f"開発部/課{i:03d}")
    org.add_group("everyone", [("USER", p.user_id) for p in people])
    for i in range(149):
        org.add_group(f"g{i:03d}", [("USER", people[i].user_id)])


def test_a_chart_over_many_pages_is_read_whole(h: Harness) -> None:
    _big(h)
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart()
    assert len(chart.units) == 255 and len(chart.groups) == 152
    # The list's inline `members` holds one page only: every member needs the members list.
    assert len(chart.groups["everyone"].members) == 250
    dev = unit_id(chart, "開発部")
    assert chart.members_under(dev) == chart.unit_members[dev] | {
        f"p{i:03d}@{D}" for i in range(250)
    }
    assert h.emulator.count(200, "GET /orgunits") == 3
    assert h.emulator.count(200, "GET /groups/{groupId}/members") == 152 + 2  # everyone: 3


@pytest.mark.parametrize(
    ("match", "skip"),
    [("GET /orgunits", 1), ("GET /groups", 1), ("GET /groups/{groupId}/members", 40)],
)
def test_a_page_refused_refuses_the_whole_chart(h: Harness, match: str, skip: int) -> None:
    _big(h)
    h.emulator.faults.append(
        Fault("refuse", match=match, skip=skip, status=400, description="bad request")
    )
    with (
        h.provider(scope=CHART_SCOPE) as provider,
        pytest.raises(TenantError, match=r"org chart was not read: .*HTTP 400"),
    ):
        provider.org_chart()
        assert not any("org units" in n for n in provider.plan_notes(_plain(h), []))


def test_a_page_that_keeps_failing_refuses_within_the_retry_budget(h: Harness) -> None:
    h.emulator.faults.append(Fault("503", match="GET /groups", skip=1, times=10_000))
    with (
        h.provider(scope=CHART_SCOPE, max_retry_time=0.5) as provider,
        pytest.raises(TenantError, match=r"gave up on GET /groups/\{groupId\}/members"),
    ):
        provider.org_chart()


def test_a_unit_a_user_names_but_the_list_lacks_refuses(h: Harness) -> None:
    org = h.tenant.org
    org.place(f"heidi@{D}", "総務部", "開発部")
    del org.units[org.unit("開発部").unit_id]  # created or deleted between the reads
    org.groups.clear()
    with (
        h.provider(scope=CHART_SCOPE) as provider,
        pytest.raises(TenantError, match="changed while it was read"),
    ):
        provider.org_chart()


def test_a_post_in_another_domain_of_the_group_company_is_not_a_unit_here(h: Harness) -> None:
    h.tenant.org.elsewhere[f"erin@{D}"] = ("10000002", ["orgunit-of-the-sister-company"])
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart()
    assert chart.units_of(f"erin@{D}") == ("開発部",)


def test_deleted_and_pending_users_are_in_no_unit_and_no_group(h: Harness) -> None:
    h.tenant.users[f"erin@{D}"].deleted = True
    h.tenant.users[f"grace@{D}"].pending = True
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart()
    everyone = {e for members in chart.unit_members.values() for e in members}
    everyone |= {e for g in chart.groups.values() for e in g.members}
    assert f"erin@{D}" not in everyone and f"grace@{D}" not in everyone
    assert f"heidi@{D}" in chart.groups["partner-support"].members


def test_groups_within_each_other_are_read_without_looping(h: Harness) -> None:
    org = h.tenant.org
    a = org.add_group("a", [("USER", h.tenant.users[f"alice@{D}"].user_id)])
    b = org.add_group("b", [("GROUP", a.group_id), ("USER", h.tenant.users[f"bob@{D}"].user_id)])
    a.members.append(("GROUP", b.group_id))
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart()
    assert chart.groups["a"].members == chart.groups["b"].members == {f"alice@{D}", f"bob@{D}"}


def test_two_groups_of_one_name_are_refused(h: Harness) -> None:
    h.tenant.org.add_group("partner-support")
    with (
        h.provider(scope=CHART_SCOPE) as provider,
        pytest.raises(TenantError, match="two directory groups are named 'partner-support'"),
    ):
        provider.org_chart()


def test_429s_are_retried_within_the_budget(h: Harness) -> None:
    h.emulator.faults.append(Fault("429", match="GET /orgunits", times=3, retry_after=0.05))
    with h.provider(scope=CHART_SCOPE) as provider:
        provider.read()
        chart = provider.org_chart()
        assert provider.client.throttled == 3
    assert len(chart.units) == 5
    assert h.emulator.count(429, "GET /orgunits") == 3
    assert h.emulator.count(200, "GET /orgunits") == 1


def test_the_chart_keeps_to_each_apis_rate_limit(tmp_path: Path, demo_state: TenantState) -> None:
    # 45 groups at 20 requests a second per API: the limiter paces them, no 429 at all.
    with emulated(tmp_path, demo_state, departments=True, limits=Limits(rate=20, window=1.0)) as h:
        for i in range(43):
            h.tenant.org.add_group(f"g{i:02d}", [("ORGUNIT", h.tenant.org.unit("開発部").unit_id)])
        provider = h.provider(scope=CHART_SCOPE)
        try:
            chart = provider.org_chart()
        finally:
            provider.close()
        assert len(chart.groups) == 45
        assert h.emulator.count(429) == 0
        assert h.emulator.count(200, "GET /groups/{groupId}/members") == 45


def test_a_tenant_scope_without_org_units_is_refused_before_any_request(h: Harness) -> None:
    provider = h.provider()  # scope=user: the member links only
    try:
        provider.read()
        with pytest.raises(
            TenantError, match=r"`orgunit.read` and `group.read`.*Developer Console"
        ):
            provider.org_chart()
    finally:
        provider.close()
    assert chart_requests(h) == 0


def test_an_answer_of_missing_scope_names_the_scope(h: Harness) -> None:
    # The app was not granted what the URI asks for: the API answers 403 (code ASSUMPTION).
    h.emulator.faults.append(
        Fault("refuse", match="GET /groups", status=403, code="INSUFFICIENT_SCOPE")
    )
    with (
        h.provider(scope=CHART_SCOPE) as provider,
        pytest.raises(TenantError, match=r"lacks the `group.read` scope"),
    ):
        provider.org_chart()


def test_the_emulator_refuses_a_token_without_the_scope(h: Harness) -> None:
    # scope=user,orgunit.read reads units but not groups; the local check catches it first,
    # so ask the API directly as the client would.
    with h.provider(scope="user,orgunit.read") as provider:
        reply = provider.client.call("GET", "/orgunits", "GET /orgunits", params={"count": 100})
        assert reply.status == 200
        with pytest.raises(TenantError, match="INSUFFICIENT_SCOPE"):
            provider.client.call("GET", "/groups", "GET /groups")


def _plain(h: Harness) -> DesiredState:
    path = h.state_dir.parent / "plain.yaml"
    path.write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    enabled: true\n"
        f"    members: {{policy: exact, include: [alice@{D}]}}\n",
        encoding="utf-8",
    )
    return load_desired(path)


def test_the_cost_is_recorded_and_said_in_the_plan_in_both_languages(h: Harness) -> None:
    with h.provider(scope=CHART_SCOPE) as provider:
        provider.read()
        before = h.emulator.count()
        provider.org_chart()
        sent = h.emulator.count() - before
        notes = provider.plan_notes(_plain(h), [])
    assert sent == chart_requests(h) == 4  # units, groups, two groups' members
    note = next(n for n in notes if "org units and groups" in n)
    assert note.startswith("lineworks: org units and groups (for the member selectors): 4 requests")
    assert "≈" in note
    assert "組織とグループ" in say(note, Messages("ja")) and "4 件" in say(note, Messages("ja"))


def test_a_read_alone_makes_no_org_chart_request(h: Harness) -> None:
    provider: LineWorksTenant = h.provider(scope=CHART_SCOPE)
    try:
        provider.read()
        notes = provider.plan_notes(_plain(h), [])
    finally:
        provider.close()
    assert chart_requests(h) == 0
    assert not any("org units" in n for n in notes)


def test_a_plan_without_selectors_makes_no_org_chart_request(
    h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in h.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LWR_STATE", raising=False)
    _plain(h)
    code = run(
        ["plan", str(h.state_dir.parent / "plain.yaml"), "--tenant", h.uri(scope=CHART_SCOPE)]
    )
    assert code in (0, 2)  # no changes, or changes: either way a plan was made
    assert h.emulator.count(200, "GET /users") >= 1
    assert chart_requests(h) == 0


def test_a_plan_with_selectors_reads_the_chart_and_says_why_and_what_it_cost(
    h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in h.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LWR_STATE", raising=False)
    path = h.state_dir.parent / "sales.yaml"
    path.write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    enabled: true\n"
        "    members:\n      include_orgunits: [営業部/東日本]\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert run(["plan", str(path), "--tenant", h.uri(scope=CHART_SCOPE)]) == 0
    out = capsys.readouterr().out
    assert chart_requests(h) > 0
    assert "(via org unit 営業部/東日本, " in out and "sales.yaml:7)" in out
    assert "org units and groups (for the member selectors)" in out


MEMBER_LISTS = "GET /groups/{groupId}/members"


def test_a_file_naming_1_of_50_groups_reads_the_members_of_that_one_only(
    h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in h.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LWR_STATE", raising=False)
    org = h.tenant.org
    for i in range(50 - len(org.groups)):
        org.add_group(f"project-{i:02d}", [("USER", h.tenant.users[f"alice@{D}"].user_id)])
    assert len(org.groups) == 50
    path = h.state_dir.parent / "support.yaml"
    path.write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  lineworks:\n    enabled: true\n"
        "    members:\n      include_groups: [partner-support]\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert run(["plan", str(path), "--tenant", h.uri(scope=CHART_SCOPE)]) == 0
    out = capsys.readouterr().out
    assert h.emulator.count(None, MEMBER_LISTS) == 1
    assert f"add member erin@{D} (via group partner-support, " in out
    # units, the group list (one page of 50) and one member list; GET /users came with the read
    assert "org units and groups (for the member selectors): 3 requests" in out


def test_a_named_group_reads_the_groups_within_it_and_unread_ones_still_suggest(
    h: Harness,
) -> None:
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart(groups=frozenset({"all-support"}))
    assert h.emulator.count(None, MEMBER_LISTS) == 2  # all-support and partner-support in it
    assert chart.groups["all-support"].members == chart.groups["partner-support"].members
    h.tenant.org.add_group("managers-west")
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart(groups=frozenset({"partner-support"}))
    assert "managers-west" not in chart.groups and "managers-west" in chart.unread_groups
    assert "managers-west" in chart.group_names  # a typo of it gets its did-you-mean


def test_two_groups_of_one_name_no_file_names_are_no_reason_to_refuse(h: Harness) -> None:
    h.tenant.org.add_group("twins")
    h.tenant.org.add_group("twins")
    with h.provider(scope=CHART_SCOPE) as provider:
        chart = provider.org_chart(groups=frozenset({"partner-support"}))
        with pytest.raises(TenantError, match="two directory groups are named 'twins'"):
            provider.org_chart(groups=frozenset({"twins"}))
    assert "twins" in chart.unread_groups

"""Properties of member selectors over random org charts, moves and selector sets (issue 16):
the planned list is include, plus the members of the selected units (sub-units included) and
groups, minus exclude, computed here from the chart's paths without reconciler.orgchart's
walk, and one apply of the plan leaves nothing to plan, before and after the directory
changes.

The tenant is the console model (reconciler.console.step, the rules the local tenant and
crash recovery apply) over random charts, then the local tenant itself: the demo company's
org chart, members moved with LocalTenant.move, each plan applied for real.
"""

from __future__ import annotations

import tempfile
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apply import execute
from reconciler.console import step
from reconciler.model import (
    ChannelName,
    ChannelState,
    DesiredChannel,
    DesiredState,
    MembersSpec,
    SafetySettings,
    TenantState,
)
from reconciler.orgchart import Group, OrgChart, OrgUnit
from reconciler.plan import make_plan
from reconciler.providers.local import LocalTenant, init_demo
from reconciler.selectors import resolve
from reconciler.store.sqlite import SqliteStateStore

DOMAIN = "example.co.jp"
PEOPLE = [f"p{i:02d}@{DOMAIN}" for i in range(16)]
NAMES = ["営業部", "開発部", "東日本", "西日本", "総務部"]  # repeated under several parents
GROUPS = ["partner-support", "managers", "新人"]
LINE = ChannelName.LINE


@dataclass(frozen=True)
class Company:
    """A random directory: unit paths (unique), each member's units, groups."""

    paths: tuple[str, ...]
    parents: dict[str, str | None]
    units_of: dict[str, frozenset[str]]  # member → the unit paths they belong to directly
    groups: dict[str, frozenset[str]]

    def chart(self) -> OrgChart:
        return OrgChart(
            units={p: OrgUnit(p, p.rsplit("/", 1)[-1], self.parents[p]) for p in self.paths},
            unit_members={
                p: frozenset(m for m, units in self.units_of.items() if p in units)
                for p in self.paths
            },
            groups={g: Group(f"g{i}", g, m) for i, (g, m) in enumerate(self.groups.items())},
        )

    def under(self, path: str) -> frozenset[str]:
        """Members of `path` and of every unit below it, by the paths alone."""
        return frozenset(
            m
            for m, units in self.units_of.items()
            if any(u == path or u.startswith(path + "/") for u in units)
        )


@st.composite
def company(draw: st.DrawFn) -> Company:
    paths: list[str] = []
    parents: dict[str, str | None] = {}
    for _ in range(draw(st.integers(1, 8))):
        parent = draw(st.one_of(st.none(), st.sampled_from(paths))) if paths else None
        name = draw(st.sampled_from(NAMES))
        path = f"{parent}/{name}" if parent else name
        if path not in parents:  # sibling names are unique, as in a directory
            paths.append(path)
            parents[path] = parent
    units_of = {m: draw(st.frozensets(st.sampled_from(paths), max_size=2)) for m in PEOPLE}
    groups = {g: draw(st.frozensets(st.sampled_from(PEOPLE))) for g in GROUPS}
    return Company(tuple(paths), parents, units_of, groups)


@st.composite
def moved(draw: st.DrawFn, before: Company) -> Company:
    """Joins, moves and leaves: some members get other units, a group changes."""
    units_of = dict(before.units_of)
    for m in draw(st.lists(st.sampled_from(PEOPLE), max_size=6)):
        units_of[m] = draw(st.frozensets(st.sampled_from(before.paths), max_size=2))
    groups = dict(before.groups)
    if draw(st.booleans()):
        g = draw(st.sampled_from(GROUPS))
        groups[g] = draw(st.frozensets(st.sampled_from(PEOPLE)))
    return replace(before, units_of=units_of, groups=groups)


@st.composite
def selection(draw: st.DrawFn, of: Company) -> MembersSpec:
    units = draw(st.lists(st.sampled_from(of.paths), unique=True, max_size=3))
    return MembersSpec(
        False,
        "exact",
        draw(st.frozensets(st.sampled_from(PEOPLE), max_size=3)),
        tuple("/" + u for u in units),  # a path always names one unit
        tuple(draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))),
        draw(st.frozensets(st.sampled_from(PEOPLE), max_size=3)),
    )


def expected(spec: MembersSpec, of: Company) -> frozenset[str]:
    chosen = set(spec.include)
    for unit in spec.include_orgunits:
        chosen |= of.under(unit.lstrip("/"))
    for group in spec.include_groups:
        chosen |= of.groups[group]
    return frozenset(chosen) - spec.exclude


def tenant(listed: frozenset[str]) -> TenantState:
    line = ChannelState(True, False, listed, False, False, False, "")
    return TenantState(DOMAIN, frozenset(PEOPLE), {LINE: line})


def plan_and_apply(spec: MembersSpec, of: Company, current: TenantState) -> TenantState:
    """Plan the file against the tenant and the company's chart, check the list, apply."""
    desired = DesiredState(1, DOMAIN, {LINE: DesiredChannel(members=spec)}, SafetySettings())
    resolved = resolve(desired, of.chart(), current.directory)
    plan = make_plan(resolved, current, "console:")
    after = step(current, plan.changes)
    assert after.channels[LINE].members == expected(spec, of)
    assert make_plan(resolved, after, "console:").changes == ()  # converged in one apply
    return after


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), start=company(), listed=st.frozensets(st.sampled_from(PEOPLE)))
def test_the_planned_list_is_the_set_formula_and_one_apply_converges(
    data: st.DataObject, start: Company, listed: frozenset[str]
) -> None:
    spec = data.draw(selection(start))
    after = plan_and_apply(spec, start, tenant(listed))
    reorganised = data.draw(moved(start))  # HR changes: the same file follows them
    plan_and_apply(spec, reorganised, after)


@SETTINGS
@given(data=st.data(), start=company())
def test_every_added_member_is_explained_by_an_entry_that_selects_them(
    data: st.DataObject, start: Company
) -> None:
    spec = data.draw(selection(start))
    desired = DesiredState(1, DOMAIN, {LINE: DesiredChannel(members=spec)}, SafetySettings())
    plan = make_plan(resolve(desired, start.chart(), frozenset(PEOPLE)), tenant(frozenset()), "c")
    for change in plan.changes:
        why = change.because
        assert why is not None and change.target not in spec.exclude
        if why.rule == "include":
            assert change.target in spec.include
        elif why.rule == "orgunit":
            assert change.target in start.under((why.name or "").lstrip("/"))
        else:
            assert why.rule == "group" and change.target in start.groups[why.name or ""]


# --- on the local tenant: its own org chart, HR moves, a real apply ---------------------------

DEMO = [
    f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
]
DEMO_UNITS = ("営業部", "営業部/東日本", "営業部/西日本", "開発部", "開発部/東日本", "総務部")
DEMO_GROUPS = ("partner-support", "managers")


def local_expected(spec: MembersSpec, chart: OrgChart) -> frozenset[str]:
    """The set formula from each member's unit paths (OrgChart.units_of), not the tree walk."""
    chosen = set(spec.include)
    for unit in spec.include_orgunits:
        path = unit.lstrip("/")
        chosen |= {
            m for m in DEMO if any(u == path or u.startswith(path + "/") for u in chart.units_of(m))
        }
    for group in spec.include_groups:
        chosen |= chart.groups[group].members
    return frozenset(chosen) - spec.exclude


local_selection = st.builds(
    MembersSpec,
    st.just(False),
    st.just("exact"),
    st.frozensets(st.sampled_from(DEMO), max_size=2),
    st.lists(st.sampled_from(DEMO_UNITS), unique=True, max_size=3).map(
        lambda units: tuple("/" + u for u in units)
    ),
    st.lists(st.sampled_from(DEMO_GROUPS), unique=True, max_size=2).map(tuple),
    st.frozensets(st.sampled_from(DEMO), max_size=2),
)
moves = st.lists(
    st.tuples(
        st.sampled_from(DEMO),
        st.lists(st.sampled_from(DEMO_UNITS), min_size=1, max_size=2, unique=True),
    ),
    max_size=4,
)


def local_apply(tenant: LocalTenant, store: SqliteStateStore, spec: MembersSpec) -> None:
    desired = DesiredState(1, DOMAIN, {LINE: DesiredChannel(members=spec)}, SafetySettings())
    current = tenant.read()
    resolved = resolve(desired, tenant.org_chart(), current.directory)
    plan = make_plan(resolved, current, tenant.key)
    execute(plan.changes, tenant, store, actor="hypothesis", plan_digest=plan.digest, domain=DOMAIN)
    after = tenant.read()
    assert after.channels[LINE].members == local_expected(spec, tenant.org_chart())
    assert make_plan(resolved, after, tenant.key).changes == ()  # one apply converged


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=local_selection, hr=moves)
def test_on_the_local_tenant_the_list_follows_moves_in_one_apply(
    spec: MembersSpec, hr: list[tuple[str, list[str]]]
) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        closing(init_demo(Path(tmp) / "tenant.db")) as tenant,
        closing(SqliteStateStore(Path(tmp) / "state.db")) as store,
    ):
        local_apply(tenant, store, spec)
        for email, units in hr:
            tenant.move(email, units)
        local_apply(tenant, store, spec)

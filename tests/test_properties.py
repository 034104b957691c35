"""Properties over random tenants and files: apply(plan) converges, export round-trips."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apply import execute
from reconciler.desired import parse_desired
from reconciler.errors import InputError
from reconciler.export import dump_yaml, export_document
from reconciler.model import (
    ChannelName,
    DesiredChannel,
    DesiredState,
    GreetingSpec,
    MembersSpec,
    SafetySettings,
)
from reconciler.plan import make_plan
from reconciler.providers.local import LocalTenant, init_demo
from reconciler.store.sqlite import SqliteStateStore

DOMAIN = "example.co.jp"
STAFF = [
    f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
]
MESSAGES = [
    "",
    "Welcome!",
    "友だち追加ありがとうございます。\n営業時間は9時〜18時です。",
    "🎉 sale: 50% off\n\n  indented line\n",
    "line one\r\nline two",
    "'quoted' \"text\"",
]

optional_bool = st.one_of(st.none(), st.booleans())
members_spec = st.one_of(
    st.none(),
    st.just(MembersSpec(True)),
    st.builds(
        MembersSpec,
        st.just(False),
        st.sampled_from(["exact", "additive"]),
        st.frozensets(st.sampled_from(STAFF)),
    ),
)


@st.composite
def channel(draw: st.DrawFn, name: ChannelName) -> DesiredChannel | None:
    if draw(st.booleans()):
        return None  # unmanaged
    enabled = draw(optional_bool)
    if enabled is False:
        return DesiredChannel(enabled=False)
    greeting = None
    if name is ChannelName.LINE and draw(st.booleans()):
        greeting = GreetingSpec(
            draw(optional_bool), draw(st.one_of(st.none(), st.sampled_from(MESSAGES)))
        )
    return DesiredChannel(
        enabled=enabled,
        auto_grant_new_members=draw(optional_bool),
        restrict_file_transfer=draw(optional_bool),
        greeting=greeting,
        members=draw(members_spec),
    )


@st.composite
def desired_state(draw: st.DrawFn) -> DesiredState:
    channels = {n: c for n in ChannelName if (c := draw(channel(n))) is not None}
    return DesiredState(1, DOMAIN, channels, SafetySettings())


@contextmanager
def demo_tenant() -> Iterator[tuple[LocalTenant, SqliteStateStore]]:
    with tempfile.TemporaryDirectory() as tmp:
        tenant = init_demo(Path(tmp) / "tenant.db")
        store = SqliteStateStore(Path(tmp) / "state.db")
        try:
            yield tenant, store
        finally:
            store.close()
            tenant.close()


def converge(tenant: LocalTenant, store: SqliteStateStore, desired: DesiredState) -> bool:
    """Apply desired; False when the planner rightly refused (list of a channel left off)."""
    try:
        plan = make_plan(desired, tenant.read(), tenant.key)
    except InputError as e:
        assert "can only change while the channel is on" in str(e)
        return False
    execute(plan.changes, tenant, store, actor="hypothesis", plan_digest=plan.digest, domain=DOMAIN)
    return True


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(start=desired_state(), target=desired_state())
def test_apply_of_plan_leaves_nothing_to_plan(start: DesiredState, target: DesiredState) -> None:
    with demo_tenant() as (tenant, store):
        converge(tenant, store, start)  # a random starting tenant
        if converge(tenant, store, target):
            assert make_plan(target, tenant.read(), tenant.key).changes == ()
            assert store.verify_audit().ok


@SETTINGS
@given(start=desired_state())
def test_export_round_trips_to_an_empty_plan(start: DesiredState) -> None:
    with demo_tenant() as (tenant, store):
        converge(tenant, store, start)
        state = tenant.read()
        text = dump_yaml(export_document(state))
        exported = parse_desired(text.encode("utf-8"), "exported.yaml")
        assert make_plan(exported, state, tenant.key).changes == ()

"""The lineworks: provider against the emulator through real HTTP: parity with the local tenant,
manual steps, attested state, refusals, faults survived, resumable applies."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator import Fault, Limits
from emulator.harness import POLLED, emulated

from reconciler import workflow
from reconciler.actions import Action, Change, change_id
from reconciler.errors import TenantError, TenantRuleError
from reconciler.manual import ManualStep, ManualStepsPending, split
from reconciler.model import ChannelName, TenantState
from reconciler.plan import Plan
from reconciler.providers.base import Provider
from reconciler.providers.lineworks import LineWorksTenant
from reconciler.providers.local import LocalTenant, extra_member, init_demo
from reconciler.render.checklist import checklist, message_of
from reconciler.stopped import ApplyStopped
from reconciler.store.sqlite import SqliteStateStore

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
D = "example.co.jp"
COMPANY = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def plain(state: TenantState) -> dict[str, Any]:
    """What both tenants can compare: everything but room counts (not readable by the API)."""
    return {
        "domain": state.domain,
        "directory": state.directory,
        **{
            c.value: (
                ch.enabled,
                ch.all_members,
                ch.members,
                ch.auto_grant_new_members,
                ch.restrict_file_transfer,
                ch.greeting_enabled,
                ch.greeting_message,
            )
            for c, ch in state.channels.items()
        },
    }


def shape(plan: Plan) -> list[tuple[Any, ...]]:
    """A plan's changes without how each tenant executes them."""
    return [
        (
            c.id,
            c.action,
            c.channel,
            c.target,
            c.before,
            c.after,
            c.destructive,
            c.depends_on,
            c.phase,
        )
        for c in plan.changes
    ]


def local_change(
    action: Action,
    channel: ChannelName,
    target: str | None = None,
    *,
    before: object = None,
    after: object = None,
) -> Change:
    return Change(change_id(action, channel, target), action, channel, target, before, after)


class Side:
    """One tenant of a parity scenario, with its own journal."""

    def __init__(self, provider: Provider, store: SqliteStateStore) -> None:
        self.provider, self.store = provider, store

    def plan(self, file: Path) -> Plan:
        return workflow.plan_file(file, self.provider)

    def apply(self, plan: Plan, **kw: Any) -> None:
        workflow.apply_plan(
            plan, self.provider, self.store, actor="ci@example", allow_destructive=True, **kw
        )


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalTenant]:
    tenant = init_demo(tmp_path / "tenant.db", members=30)
    yield tenant
    tenant.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "lw-state.db") as s:
        yield s


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "local-state.db") as s:
        yield s


# -- parity: the same plan, the same order, the same end state ---------------------------------

SCENARIO_B = f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    auto_grant_new_members: true
    members:
      policy: exact
      include: [alice@{D}, frank@{D}]
  lineworks:
    enabled: false
"""

SCENARIO_C = f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    restrict_file_transfer: false
    greeting:
      enabled: true
      message: "いつもありがとうございます。\\nWe reply within a day."
    members:
      policy: exact
      include: [{", ".join(extra_member(i, D) for i in range(9, 31))}, alice@{D}]
  lineworks:
    enabled: true
    auto_grant_new_members: false
    members:
      policy: additive
      include: [bob@{D}, carol@{D}, erin@{D}, {extra_member(12, D)}]
"""


def _prepare_b(local: LocalTenant) -> None:
    """LINE in "all members" mode; LINE WORKS on with a list and auto-grant."""
    local.apply(
        [
            local_change(Action.ENABLE_CHANNEL, LW, before=False, after=True),
            local_change(Action.GRANT_ALL_MEMBERS, LINE, before=False, after=True),
            local_change(Action.ADD_MEMBER, LW, f"alice@{D}", before=False, after=True),
            local_change(Action.ADD_MEMBER, LW, f"bob@{D}", before=False, after=True),
            local_change(Action.SET_AUTO_GRANT, LW, before=False, after=True),
        ]
    )


SCENARIOS: dict[str, tuple[str | None, Callable[[LocalTenant], None] | None]] = {
    "company-example": (None, None),
    "all-to-listed-and-channel-off": (SCENARIO_B, _prepare_b),
    "big-lists-and-greeting": (SCENARIO_C, None),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_plan_and_apply_equal_the_local_tenant(
    name: str,
    tmp_path: Path,
    local: LocalTenant,
    store: SqliteStateStore,
    local_store: SqliteStateStore,
) -> None:
    text, prepare = SCENARIOS[name]
    if prepare is not None:
        prepare(local)
    desired = COMPANY if text is None else write(tmp_path / "desired.yaml", text)
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        api.batch_size = 7  # several journal batches per phase
        try:
            lw, here = Side(api, store), Side(local, local_store)
            plan_lw, plan_local = lw.plan(desired), here.plan(desired)
            assert shape(plan_lw) == shape(plan_local) and plan_lw.changes
            assert {c.execution for c in plan_lw.changes} <= {"api", "manual"}
            assert all(
                c.execution == ("api" if c.action in LineWorksTenant.API_ACTIONS else "manual")
                for c in plan_lw.changes
            )

            here.apply(plan_local)
            lw.apply(plan_lw, manual="ask", on_manual=h.admin)

            h.tenant.wait_settled()  # accepted (202) is not done yet on the documented path
            assert plain(h.tenant.snapshot()) == plain(local.read())
            assert not lw.plan(desired).changes and not here.plan(desired).changes
        finally:
            api.close()


def test_member_changes_are_single_api_calls_in_planned_order_per_api(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_C)
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            Side(api, store).apply(plan, manual="attested")
        finally:
            api.close()
        sent = [e.operation for e in h.emulator.log if e.method == "POST" and "link" in e.operation]
        verb = {Action.ADD_MEMBER: "link", Action.REMOVE_MEMBER: "unlink"}
        expected = [
            f"POST /users/{{userId}}/{verb[c.action]}-to-{'line' if c.channel is LINE else 'works'}"
            for c in plan.changes
            if c.execution == "api"
        ]
        # The APIs of a phase run side by side: each API's requests in planned order.
        for operation in set(expected):
            assert [o for o in sent if o == operation] == [o for o in expected if o == operation]
        assert sorted(sent) == sorted(expected)


# -- manual steps ------------------------------------------------------------------------------


def test_non_interactive_apply_stops_before_the_first_manual_step(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_C)
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            first_manual = next(i for i, c in enumerate(plan.changes) if c.execution == "manual")
            with pytest.raises(ApplyStopped) as caught:
                Side(api, store).apply(plan)  # the library default: stop
            pending = caught.value.cause
            assert isinstance(pending, ManualStepsPending) and caught.value.exit_code == 3
            assert pending.pending == plan.changes[first_manual:]
            # The error carries the steps; the checklist is the CLI's view of them.
            assert "\n" not in str(caught.value) and "--manual=attested" in str(caught.value)
            assert "Automatic greeting message" in message_of(pending)
            assert message_of(pending).splitlines()[1:-1] == checklist(pending.pending).splitlines()
            assert len(caught.value.result.applied) == first_manual  # what ran before it
            # What came before ran; nothing after it did, and the journal says so.
            again = workflow.plan_file(desired, api)
            assert [c.id for c in again.changes] == [c.id for c in plan.changes[first_manual:]]

            Side(api, store).apply(again, manual="ask", on_manual=h.admin)
            assert not workflow.plan_file(desired, api).changes
        finally:
            api.close()


def test_skip_leaves_manual_steps_and_their_dependents_for_the_next_plan(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_B)
    _prepare_b(local)
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            held = split(plan.changes, "skip").held
            # Leaving "all members" is manual; the removals depend on it: all are held.
            assert {c.action for c in held} >= {
                Action.RESTRICT_TO_LISTED_MEMBERS,
                Action.REMOVE_MEMBER,
            }
            before = h.emulator.count()
            Side(api, store).apply(plan, manual="skip")
            assert h.emulator.count(match="link") == 0 and h.emulator.count() > before
            assert [c.id for c in workflow.plan_file(desired, api).changes] == [
                c.id for c in plan.changes
            ]
        finally:
            api.close()


def test_declined_step_stops_the_apply_and_records_nothing_for_it(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = COMPANY
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            seen: list[ManualStep] = []

            def decline(step: ManualStep) -> bool:
                seen.append(step)
                return False

            with pytest.raises(ApplyStopped) as stopped:
                Side(api, store).apply(plan, manual="ask", on_manual=decline)
            assert isinstance(stopped.value.cause, ManualStepsPending)
            manual = [c for c in plan.changes if c.execution == "manual"]
            assert [(s.number, s.total, s.change) for s in seen] == [(1, len(manual), manual[0])]
            assert workflow.plan_file(desired, api).changes == plan.changes
        finally:
            api.close()


def test_checklist_names_the_console_path_and_exact_value(
    tmp_path: Path, local: LocalTenant
) -> None:
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(COMPANY, api)
        finally:
            api.close()
    text = checklist(plan.changes)
    assert (
        "Admin > Service > Message > External messaging > Chat with LINE WORKS users from "
        "other companies > Use status: set Use"
    ) in text
    assert "Chat with LINE users > Restrict file transfer/attachment: set On" in text
    assert "      | 友だち追加ありがとうございます。営業時間は 9:00〜18:00（JST）です。" in text
    assert "remove member" not in text  # API changes are not on the checklist


def test_attested_values_are_labelled_and_never_claimed_as_read(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    with emulated(tmp_path, local.read()) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(COMPANY, api)
            Side(api, store).apply(plan, manual="ask", on_manual=h.admin)
            api.read()
            origin = api.provenance()
            assert origin["directory"] == "read"
            assert origin["line.restrict_file_transfer"] == "attested"
            assert origin["lineworks.all_members"] == "applied"
            notes = workflow.plan_file(COMPANY, api).warnings
            assert any("attested, not read" in n and "line.greeting_message" in n for n in notes)
            # The console changes behind lwr's back: the plan cannot see it, and says why.
            h.tenant.channels[LINE].restrict_file_transfer = False
            assert not workflow.plan_file(COMPANY, api).changes
        finally:
            api.close()


def test_unknown_values_are_assumed_defaults_and_said_so(
    tmp_path: Path, local: LocalTenant
) -> None:
    with emulated(tmp_path, local.read(), attest=False) as h:
        api = h.provider()
        try:
            plan = workflow.plan_file(COMPANY, api)
        finally:
            api.close()
    assert any(
        "never read nor attested" in w and "line.members" in w and "lwr attest" in w
        for w in plan.warnings
    )
    assert any("API request" in w and "journaled" in w for w in plan.warnings)


# -- refusals ----------------------------------------------------------------------------------


def test_line_link_refused_for_a_name_with_line_names_member_and_console(
    tmp_path: Path, store: SqliteStateStore
) -> None:
    with emulated(tmp_path) as h:
        h.tenant.add_user(f"caroline@{D}", "Caroline")
        h.tenant.add_user(f"bob@{D}", "Bob")
        desired = write(
            tmp_path / "d.yaml",
            f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    members: {{policy: exact, include: [bob@{D}, caroline@{D}]}}
""",
        )
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            with pytest.raises(ApplyStopped) as caught:
                Side(api, store).apply(plan, manual="ask", on_manual=h.admin)
            assert isinstance(caught.value.cause, TenantRuleError)
            message = str(caught.value)
            assert f"line/add_member/caroline@{D}" in message and "emoji" in message
            assert "Connected-members > Manage" in message
            assert h.tenant.snapshot().channels[LINE].members == frozenset({f"bob@{D}"})
        finally:
            api.close()


def test_per_member_change_refused_in_all_members_mode(
    tmp_path: Path, store: SqliteStateStore
) -> None:
    with emulated(tmp_path) as h:
        h.tenant.add_user(f"bob@{D}")
        api = h.provider()
        try:
            api.read()
            h.tenant.channels[LINE].enabled = h.tenant.channels[LINE].all_members = True
            add = Change(
                change_id(Action.ADD_MEMBER, LINE, f"bob@{D}"),
                Action.ADD_MEMBER,
                LINE,
                f"bob@{D}",
                False,
                True,
                execution="api",
            )
            with pytest.raises(TenantRuleError, match="grants all members"):
                api.apply([add])
        finally:
            api.close()


# -- faults ------------------------------------------------------------------------------------


def test_faults_are_survived_and_the_tenant_ends_exactly_as_desired(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore, local_store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_C)
    with emulated(tmp_path, local.read(), pending=0.01, limits=POLLED) as h:
        h.emulator.faults += [
            Fault("500", "link-to-line", times=3, skip=2),
            Fault("drop_after", "link-to-line", times=2, skip=6),  # applied, answer lost
            Fault("drop", "link-to-works", times=1),
            Fault("503", "GET /users", times=2, retry_after=0.02),
            Fault("429", "link-to-line", times=5, skip=12, retry_after=0.03),
            Fault("slow", "link-to-line", times=1, skip=15, delay=1.0),
            Fault("500", "operations", times=2),
        ]
        api = h.provider(timeout=0.4)
        try:
            lw = Side(api, store)
            lw.apply(lw.plan(desired), manual="ask", on_manual=h.admin)
            here = Side(local, local_store)
            here.apply(here.plan(desired))
            assert plain(h.tenant.snapshot()) == plain(local.read())
            assert not lw.plan(desired).changes
            assert all(f.seen >= f.skip + f.times for f in h.emulator.faults)
        finally:
            api.close()


def test_a_429_storm_is_waited_out_within_the_limiters_bound(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_C)
    storm = 25
    with emulated(tmp_path, local.read()) as h:
        h.emulator.faults.append(
            Fault("429", "link-to-line", times=storm, skip=3, retry_after=0.02)
        )
        api = h.provider()
        try:
            plan = workflow.plan_file(desired, api)
            Side(api, store).apply(plan, manual="attested")
        finally:
            api.close()
        calls = sum(1 for c in plan.changes if c.execution == "api" and c.channel is LINE)
        log = [e for e in h.emulator.log if "link-to-line" in e.operation]
        # Every call once, plus one retry per injected 429 at most: no request wasted.
        assert len(log) == calls + storm
        assert [e.status for e in log].count(429) == storm
        # Retry-After honoured: nothing of the operation arrives before the server said.
        for before, after in itertools.pairwise(log):
            if before.status == 429:
                assert after.at - before.at >= 0.02


def test_an_interrupted_apply_resumes_without_repeating_done_calls(
    tmp_path: Path, local: LocalTenant, store: SqliteStateStore
) -> None:
    desired = write(tmp_path / "d.yaml", SCENARIO_C)
    with emulated(tmp_path, local.read()) as h:
        h.emulator.faults.append(Fault("500", "link-to-line", times=1000, skip=9))
        api = h.provider(max_retry_time=0.3)
        try:
            plan = workflow.plan_file(desired, api)
            gave_up = re.escape("gave up on POST /users/{userId}/link-to-line")
            with pytest.raises(ApplyStopped, match=gave_up) as caught:
                Side(api, store).apply(plan, manual="attested")
            assert isinstance(caught.value.cause, TenantError)
            h.emulator.faults.clear()
            Side(api, store).apply(workflow.plan_file(desired, api), manual="attested")
            assert not workflow.plan_file(desired, api).changes
        finally:
            api.close()
        ok = [e for e in h.emulator.log if "link-to-line" in e.operation and e.status == 204]
        assert len(ok) == sum(
            1 for c in plan.changes if c.execution == "api" and c.channel is LINE
        )  # each member linked exactly once


def test_accepted_operations_are_polled_until_done(tmp_path: Path, store: SqliteStateStore) -> None:
    with emulated(tmp_path, pending=0.05, bulk_pending=0.1, limits=POLLED) as h:
        for name in ("alice", "bob"):
            h.tenant.add_user(f"{name}@{D}")
        desired = write(
            tmp_path / "d.yaml",
            f"""version: 1
tenant: {D}
external_messaging:
  line: {{enabled: true, members: {{policy: exact, include: [alice@{D}]}}}}
  lineworks: {{enabled: true, members: all}}
""",
        )
        api = h.provider()
        try:
            Side(api, store).apply(
                workflow.plan_file(desired, api), manual="ask", on_manual=h.admin
            )
        finally:
            api.close()
        # Both accepted operations were followed to their end before lwr recorded them.
        assert h.emulator.count(202) == 2 and h.emulator.count(200, "operations") >= 2
        state = h.tenant.snapshot()
        assert state.channels[LW].all_members and state.channels[LINE].members == {f"alice@{D}"}


def test_an_operation_still_pending_after_the_poll_timeout_is_a_clear_error(
    tmp_path: Path, store: SqliteStateStore
) -> None:
    with emulated(tmp_path, bulk_pending=30.0, limits=POLLED) as h:
        h.tenant.add_user(f"alice@{D}")
        desired = write(
            tmp_path / "d.yaml",
            f"""version: 1
tenant: {D}
external_messaging:
  lineworks: {{enabled: true, members: all}}
""",
        )
        api = h.provider(poll_timeout=0.2)
        try:
            with pytest.raises(ApplyStopped, match=r"still in progress after 0\.2 s") as caught:
                Side(api, store).apply(workflow.plan_file(desired, api), manual="attested")
            assert isinstance(caught.value.cause, TenantError)
        finally:
            api.close()


def test_without_a_status_location_accepted_means_done(
    tmp_path: Path, store: SqliteStateStore
) -> None:
    with emulated(
        tmp_path, limits=Limits(rate=200, window=1.0, status_location=False), bulk_pending=0.01
    ) as h:
        h.tenant.add_user(f"alice@{D}")
        desired = write(
            tmp_path / "d.yaml",
            f"""version: 1
tenant: {D}
external_messaging:
  lineworks: {{enabled: true, members: all}}
""",
        )
        api = h.provider()
        try:
            Side(api, store).apply(
                workflow.plan_file(desired, api), manual="ask", on_manual=h.admin
            )
            assert not workflow.plan_file(desired, api).changes
        finally:
            api.close()
        assert h.emulator.count(match="operations") == 0


# -- the directory -----------------------------------------------------------------------------


def test_deleted_and_pending_users_are_not_in_the_directory(tmp_path: Path) -> None:
    with emulated(tmp_path) as h:
        h.tenant.add_user(f"alice@{D}")
        h.tenant.add_user(f"gone@{D}").deleted = True
        h.tenant.add_user(f"invited@{D}").pending = True  # invited, has not joined yet
        api = h.provider()
        try:
            assert api.directory() == {f"alice@{D}"}
        finally:
            api.close()

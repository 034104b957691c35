"""The library's front door: plan a file, check a saved plan, apply, export, show.

The CLI calls these and only adds printing and prompts; scripts can import them directly.
`apply(request, ui)` is the one apply sequence that `lwr apply FILE|PLAN` and
`lwr apply DIR` both run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reconciler.actions import Change
from reconciler.desired import check_against_tenant, load_desired
from reconciler.errors import (
    AlreadyApplied,
    PlanForAnotherTenant,
    StalePlan,
    UsageError,
)
from reconciler.export import export_yaml as export_yaml  # re-exported: the library's
from reconciler.export import state_json as state_json  # (reconciler/__init__.py)
from reconciler.i18n import N_, Msg, Said
from reconciler.manual import (
    ManualMode,
    ManualRun,
    ManualStep,
    ManualStepHandler,
    ManualStepsPending,
    annotate,
    split,
)
from reconciler.model import DesiredState, TenantState
from reconciler.plan import Plan, make_plan, state_digest
from reconciler.providers import open_provider
from reconciler.providers.base import Provider
from reconciler.selecting import (
    LastSelection,
    StateAt,
    last_selection_at,
    with_previous,
    with_selectors,
)
from reconciler.sniff import is_saved_plan

if TYPE_CHECKING:  # apply machinery is imported on apply only: `plan` starts faster
    from reconciler.apply import ApplyResult, ProgressCallback
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.saved_plan import SavedPlan
    from reconciler.stopped import ApplyStopped
    from reconciler.store import StateLocation
    from reconciler.store.base import LockHolder, StateStore


@dataclass(frozen=True)
class Planned:
    """A plan with what it was made from: the validated file and the tenant state read."""

    desired: DesiredState
    current: TenantState
    plan: Plan


def plan_desired(path: str | Path, provider: Provider, state: StateAt | None = None) -> Planned:
    """Validate `path`, read the tenant, plan (docs/contract.md#the-plan); keep the inputs.
    `state`: where the state store is (asked only for a file with selectors), whose last
    apply's selection lets a removal say whom the member left."""
    return plan_loaded(load_desired(path), provider, state)


def plan_loaded(desired: DesiredState, provider: Provider, state: StateAt | None = None) -> Planned:
    """Read the tenant and plan an already validated desired state (docs/contract.md#the-plan)."""
    current = provider.read()  # raises on any failed or partial read: never plans from less
    return _plan_read(desired, current, provider, last_selection_at(state))


def _plan_read(
    desired: DesiredState,
    current: TenantState,
    provider: Provider,
    last: LastSelection | None = None,
) -> Planned:
    check_against_tenant(desired, current.domain, current.directory)
    desired = with_selectors(desired, provider, current.directory)
    desired = with_previous(desired, last, provider.key)
    return Planned(
        desired,
        current,
        annotate(make_plan(desired, current, provider.key, provider.execution), desired, provider),
    )


def plan_file(path: str | Path, provider: Provider) -> Plan:
    """Load and validate `path`, read the tenant, and plan (docs/contract.md#the-plan)."""
    return plan_desired(path, provider).plan


def load_saved_plan(path: str | Path) -> SavedPlan:
    """Read a plan written by `lwr plan --out`: schema, digests, embedded desired state.

    A malformed file is an InputError (exit 1); one whose digests do not match its content
    is refused (StalePlan, exit 3). Nothing is checked against a tenant yet.
    """
    from reconciler.saved_plan import read_saved_plan

    return read_saved_plan(path)


def check_saved_plan(
    saved: SavedPlan, provider: Provider, store: StateStore | None = None
) -> Planned:
    """Plan the saved plan's desired state again; refuse (exit 3) unless it is the file.

    Refused: a plan made for another tenant, a plan that a finished run applied already (with
    `store`: a saved plan applies once), and a plan that planning its desired document against
    the tenant now does not reproduce field for field: the tenant changed, or the file was
    edited. What comes back is the fresh plan (with the saved metadata): apply, policies and
    the safety gate use it and its desired state, never the file's own change list.
    """
    plan = saved.plan
    if plan.tenant_uri != provider.key:
        text = N_("refused: the plan was made for {uri}, not {target}")
        raise PlanForAnotherTenant(Said.of(text, uri=plan.tenant_uri, target=provider.key))
    if store is not None:
        check_not_applied(plan, store)
    current = provider.read()
    if state_digest(current) != plan.state_digest:  # first: a left member is staleness too
        raise StalePlan(
            Said.of(
                "refused: the tenant {tenant} changed since the plan was made ({at}); run "
                "`lwr plan` again and review the new plan",
                tenant=plan.tenant,
                at=plan.created_at or Msg.of(N_("unknown time")),
            )
        )
    last = store.last_selection if store is not None else None
    fresh = _plan_read(saved.desired, current, provider, last)
    pinned = saved.pin(fresh.plan)
    if pinned.digest == saved.document["plan_digest"]:  # the file's digest matches its content
        return Planned(fresh.desired, fresh.current, pinned)
    from reconciler.saved_plan import first_difference

    where = first_difference(saved.document, pinned.to_json()) or Said.of("its plan_digest")
    raise StalePlan(
        Said.of(
            "refused: the plan was edited or the tenant changed since it was made ({at}): "
            "{where}; run `lwr plan FILE --out PLAN.json` again and review the new plan",
            at=plan.created_at or Msg.of(N_("unknown time")),
            where=where,
        )
    )


def check_not_applied(plan: Plan, store: StateStore) -> None:
    """Refuse (exit 3) a saved plan that a finished run of this tenant already applied."""
    run = store.applied_run(plan.tenant_uri, plan.digest)
    if run is not None:
        raise AlreadyApplied(
            Said.of(
                "refused: this plan was applied to {tenant} already, on {at} by {actor} "
                "(run {run}); a saved plan is applied once: run `lwr plan FILE --out PLAN.json` "
                "again for a new one",
                tenant=plan.tenant,
                at=run.finished_at or run.started_at,
                actor=run.actor,
                run=run.run_id,
            )
        )


def apply_plan(
    plan: Plan,
    provider: Provider,
    store: StateStore,
    *,
    actor: str,
    allow_destructive: bool,
    on_progress: ProgressCallback | None = None,
    saved: SavedPlan | None = None,
    checked_against: TenantState | None = None,
    manual: ManualMode = "stop",
    on_manual: ManualStepHandler | None = None,
    waited: bool = True,
    fail_fast: bool = False,
) -> ApplyResult:
    """Apply `plan` in order under the tenant lock, journaled and audited: the flow's
    execute step, also for scripts that plan and check themselves.

    `saved`: `plan` is what `check_saved_plan(saved, ...)` returned; under the lock it is
    planned again and must still be the file (and not applied yet), else nothing is applied.
    `checked_against`: the tenant state that check was made against; when the tenant read
    under the lock equals it, planning again would give the same plan and is skipped.
    `manual`: what manual steps do (reconciler.manual): `ask` calls `on_manual` for each,
    `attested` records them as done, `skip` leaves them (and what depends on them) for the
    next plan, `stop` applies up to the first one and raises ApplyStopped caused by
    ManualStepsPending (exit 3). A failure or interrupt raises ApplyStopped with what was done;
    so do changes the tenant refused (cause ChangesRefused, exit 1), once everything that does
    not depend on them was applied (`fail_fast`: at the first refusal). `waited`: a prompt
    stood between planning and now (Provider.reread).
    """
    from reconciler.apply import execute
    from reconciler.outcomes import refusals
    from reconciler.stopped import ApplyStopped

    plan.raise_if_unsafe(allow_destructive=allow_destructive)

    def unchanged_since_plan() -> None:
        # Checked again under the lock: another apply may have landed since planning.
        if saved is not None:
            if checked_against is None or provider.reread(waited=waited) != checked_against:
                check_saved_plan(saved, provider, store)
            else:  # the same desired state against the same tenant plans the same
                check_not_applied(saved.plan, store)
        elif state_digest(provider.reread(waited=waited)) != plan.state_digest:
            raise StalePlan(
                Said.of(
                    "refused: the tenant {tenant} changed since the plan was made; run "
                    "`lwr plan` again and review the new plan",
                    tenant=plan.tenant,
                )
            )

    steps = ManualRun(plan.changes, provider, manual, on_manual)
    try:
        result = execute(
            steps.changes,
            provider,
            store,
            actor=actor,
            plan_digest=plan.digest,
            domain=plan.tenant,
            on_progress=on_progress,
            precheck=unchanged_since_plan,
            fail_fast=fail_fast,
        )
    finally:
        steps.release()
    if result.refused or result.blocked:
        raise ApplyStopped(result, refusals(result))
    try:
        steps.finish()
    except ManualStepsPending as pending:  # what ran before them is done and journaled
        raise ApplyStopped(result, pending) from pending
    return result


@dataclass(frozen=True)
class ApplyRequest:
    """What `apply` is asked to do, decided before anything is read.

    `source`: a desired file (path or already validated), or a saved plan (a `.json` path or
    one read by `load_saved_plan`). `manual`: what manual steps do (reconciler.manual); None
    lets the UI decide: ask when it can, else stop before them. `confirmed`: apply without
    asking (--auto-approve; a saved plan, the reviewed artifact, is never asked about).
    `lock_timeout`: seconds to wait for a tenant lock another apply holds (0: refuse at once).
    """

    tenant_uri: str
    source: str | Path | DesiredState | SavedPlan
    actor: str
    state_uri: str | None = None
    rules: Sequence[PolicyRule] = ()
    allow_destructive: bool = False
    manual: ManualMode | None = None
    confirmed: bool = False
    lock_timeout: float = 0.0
    fail_fast: bool = False  # stop at the first change the tenant refuses


class ApplyUI(Protocol):
    """What the apply flow tells and asks its user; the CLI's terminal, or nobody (a fleet)."""

    @property
    def can_ask(self) -> bool:
        """Whether `manual_step` can be answered (a terminal is there to answer on)."""

    def show_plan(self, plan: Plan, policy: PolicyReport) -> None:
        """The plan to be applied with its policy findings, before any check refuses it."""

    def show_checklist(self, plan: Plan) -> None:
        """The plan passed every check; its manual steps, if any, before the confirmation."""

    def confirm(self, plan: Plan) -> None:
        """Ask before applying; raise (UsageError, Cancelled) to apply nothing."""

    def progress(self, *, prompting: bool) -> AbstractContextManager[ProgressCallback | None]:
        """A progress callback for the run, or None; `prompting`: manual steps will ask."""

    def manual_step(self, step: ManualStep) -> bool:
        """Wait until the admin has done `step` in the console (True) or stops (False)."""

    def took_over(self, holder: LockHolder) -> None:
        """This apply took over a lock left by a dead process."""

    def waiting_for_lock(self, holder: LockHolder, timeout: float) -> None:
        """Another apply holds the tenant: this one waits up to `timeout` s (told once)."""

    def stopped(self, stop: ApplyStopped, total: int) -> None:
        """The apply ended before its last change (`total` in the plan); raised after this."""


@dataclass(frozen=True)
class Applied:
    """What `apply` did: the plan and its policy report, and what the executor did.

    `result` is None when there was nothing to apply and nothing left to recover. `held`:
    changes left for the next plan (manual steps and what depends on them, with `skip`).
    """

    planned: Planned
    policy: PolicyReport
    result: ApplyResult | None
    held: tuple[Change, ...] = field(default=())


def apply(request: ApplyRequest, ui: ApplyUI) -> Applied:
    """Plan (or load and check a saved plan), check policies, recover an interrupted run,
    pass the safety gate, confirm, and apply in order: the one apply sequence.

    Raises the refusal of whichever check fails first; once the executor ran, ApplyStopped
    (after `ui.stopped`) when it ended early.
    """
    from reconciler import executing
    from reconciler.lockwait import LockWait, wait_until_free
    from reconciler.policy import evaluate
    from reconciler.saved_plan import SavedPlan
    from reconciler.store import StateLocation

    source = request.source
    if isinstance(source, str | Path) and is_saved_plan(source):
        source = load_saved_plan(source)  # a malformed plan fails before the tenant is read
    with closing(open_provider(request.tenant_uri, request.state_uri)) as provider:
        # Resolved once, before planning: a --state of no known kind fails before a plan
        # that could not be applied is shown.
        state = StateLocation.resolve(request.state_uri, request.tenant_uri)
        # A locked tenant is said (or waited out) before anything is planned or shown.
        wait_until_free(state, provider.key, LockWait(request.lock_timeout, ui.waiting_for_lock))
        planned = _plan_or_check(source, provider, state)
        plan = planned.plan
        policy = evaluate(request.rules, desired=planned.desired, plan=plan)
        ui.show_plan(plan, policy)
        policy.raise_if_denied()
        if not plan.changes:
            recovered = executing.recover_interrupted(provider, state, plan.tenant)
            executing.remember_selection(state, provider.key, planned.desired, recovered)
            executing.tell_takeover(recovered, ui)
            return Applied(planned, policy, recovered)
        plan.raise_if_unsafe(allow_destructive=request.allow_destructive)
        mode = _manual_mode(request.manual, ui)
        ui.show_checklist(plan)
        if not (request.confirmed or isinstance(source, SavedPlan)):
            ui.confirm(plan)
        result = executing.run_confirmed(
            plan,
            provider,
            state,
            request,
            ui,
            mode,
            source if isinstance(source, SavedPlan) else None,
            planned,
        )
    executing.tell_takeover(result, ui)
    held = split(plan.changes, "skip").held if mode == "skip" else ()
    return Applied(planned, policy, result, held)


def _plan_or_check(
    source: str | Path | DesiredState | SavedPlan, provider: Provider, state: StateLocation
) -> Planned:
    """Plan a desired file; or check a saved plan (not applied yet, still reproduced)."""
    from reconciler.saved_plan import SavedPlan

    if isinstance(source, SavedPlan):
        # What is shown, checked and applied is the saved plan's desired state planned
        # again, once it reproduces the file; never the file's own change list.
        with closing(state.open()) as store:  # refuse a replay before showing it
            return check_saved_plan(source, provider, store)
    if isinstance(source, DesiredState):
        return plan_loaded(source, provider, lambda: state)
    return plan_desired(source, provider, lambda: state)


def _manual_mode(option: ManualMode | None, ui: ApplyUI) -> ManualMode:
    """--manual as given; else ask when the UI can, stop before manual steps when not."""
    if option is None:
        return "ask" if ui.can_ask else "stop"
    if option == "ask" and not ui.can_ask:
        raise UsageError(
            Said.of(
                "--manual=ask needs a terminal to answer on; use --manual=attested or "
                "--manual=skip in a pipeline"
            )
        )
    return option

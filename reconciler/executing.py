"""The apply flow's execute step: run a confirmed plan with the UI's progress and say how a
stopped run ended; and, with nothing to apply, recover what a killed apply left.

Split from reconciler.workflow (which decides *whether* to apply) so each stays small.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING

from reconciler.manual import ManualMode
from reconciler.model import DesiredState
from reconciler.plan import Plan
from reconciler.providers.base import Provider
from reconciler.saved_plan import SavedPlan
from reconciler.selecting import remember
from reconciler.stopped import ApplyStopped
from reconciler.stopping import StopRequest

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult
    from reconciler.store import StateLocation
    from reconciler.workflow import ApplyRequest, ApplyUI, Planned


def recover_interrupted(
    provider: Provider, state: StateLocation, domain: str
) -> ApplyResult | None:
    """Nothing to apply: still recover what a killed apply left in doubt (its journal,
    run and lock), applying nothing.

    None when the store was never created (nothing was ever applied through it) or when
    nothing was left unsettled.
    """
    if not state.exists:
        return None
    from reconciler import apply as executor

    with closing(state.open()) as store:
        return executor.recover_interrupted(provider, store, domain)


def run_confirmed(
    plan: Plan,
    provider: Provider,
    state: StateLocation,
    request: ApplyRequest,
    ui: ApplyUI,
    mode: ManualMode,
    saved: SavedPlan | None,
    planned: Planned,
) -> ApplyResult:
    """Run the confirmed plan (the flow's execute step, reconciler.workflow.apply); say what
    a stopped run did before it is raised on. A run that applied anything keeps the file's
    selection as the last apply's (reconciler.selection), a stopped one too."""
    from reconciler.lockwait import LockWait
    from reconciler.workflow import apply_plan

    prompting = mode == "ask" and any(c.execution == "manual" for c in plan.changes)
    with (
        closing(state.open()) as store,
        ui.progress(prompting=prompting) as on_progress,
        StopRequest(),  # until the stop is told: the executor's request joins this one
    ):
        try:
            result = apply_plan(
                plan,
                provider,
                LockWait(request.lock_timeout, ui.waiting_for_lock).around(store),
                actor=request.actor,
                allow_destructive=request.allow_destructive,
                on_progress=on_progress,
                saved=saved,
                checked_against=planned.current,
                manual=mode,
                on_manual=ui.manual_step,
                fail_fast=request.fail_fast,
                # GET /users again only when a prompt stood between plan and apply
                waited=not (request.confirmed or saved is not None),
            )
        except ApplyStopped as stop:
            if stop.result.applied:  # applied partly: the selection took effect as far
                remember(store, provider.key, planned.desired, stop.result.run_id)
            tell_takeover(stop.result, ui)
            ui.stopped(stop, len(plan.changes))
            raise
        remember(store, provider.key, planned.desired, result.run_id)
        return result


def remember_selection(
    state: StateLocation, tenant_key: str, desired: DesiredState, result: ApplyResult | None
) -> None:
    """An apply with nothing to do still agrees with the file's selection: keep it as the last
    apply's (a file with selectors only; a store is created for it as for any apply)."""
    if desired.uses_selectors:
        with closing(state.open()) as store:
            remember(store, tenant_key, desired, result.run_id if result else None)


def tell_takeover(result: ApplyResult | None, ui: ApplyUI) -> None:
    """Tell the UI when the run took over a lock left by a dead process."""
    if result is not None and result.took_over is not None:
        ui.took_over(result.took_over)

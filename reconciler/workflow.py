"""The library's front door: plan a file, check a saved plan, apply, export, show.

The CLI calls these and only adds printing and prompts; scripts can import them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import settings
from reconciler.desired import check_against_tenant, load_desired
from reconciler.errors import AlreadyApplied, StalePlan, WrongTenant
from reconciler.export import dump_yaml, export_document
from reconciler.manual import ManualMode, ManualRun, ManualStepHandler, annotate
from reconciler.model import DesiredState, TenantState
from reconciler.plan import Plan, make_plan, state_digest
from reconciler.providers.base import Provider
from reconciler.saved_plan import SavedPlan, first_difference, read_saved_plan
from reconciler.settings import ENABLED, MEMBERS_MODE

if TYPE_CHECKING:  # apply machinery is imported on apply only: `plan` starts faster
    from reconciler.apply import ApplyResult
    from reconciler.store import StateLocation
    from reconciler.store.base import StateStore


@dataclass(frozen=True)
class Planned:
    """A plan with what it was made from: the validated file and the tenant state read."""

    desired: DesiredState
    current: TenantState
    plan: Plan


def plan_desired(path: str | Path, provider: Provider) -> Planned:
    """Validate `path`, read the tenant, plan (docs/contract.md#the-plan); keep the inputs."""
    return plan_loaded(load_desired(path), provider)


def plan_loaded(desired: DesiredState, provider: Provider) -> Planned:
    """Read the tenant and plan an already validated desired state (docs/contract.md#the-plan)."""
    current = provider.read()  # raises on any failed or partial read: never plans from less
    return _plan_read(desired, current, provider)


def _plan_read(desired: DesiredState, current: TenantState, provider: Provider) -> Planned:
    check_against_tenant(desired, current.domain, current.directory)
    return Planned(desired, current,
                   annotate(make_plan(desired, current, provider.key, provider.execution),
                            desired, provider))


def plan_file(path: str | Path, provider: Provider) -> Plan:
    """Load and validate `path`, read the tenant, and plan (docs/contract.md#the-plan)."""
    return plan_desired(path, provider).plan


def load_saved_plan(path: str | Path) -> SavedPlan:
    """Read a plan written by `lwr plan --out`: schema, digests, embedded desired state.

    A malformed file is an InputError (exit 1); one whose digests do not match its content
    is refused (StalePlan, exit 3). Nothing is checked against a tenant yet.
    """
    return read_saved_plan(path)


def is_saved_plan(path: str | Path) -> bool:
    """Saved plans are JSON files; desired-state files are YAML."""
    return str(path).lower().endswith(".json")


def check_saved_plan(saved: SavedPlan, provider: Provider,
                     store: StateStore | None = None) -> Planned:
    """Plan the saved plan's desired state again; refuse (exit 3) unless it is the file.

    Refused: a plan made for another tenant, a plan that a finished run applied already (with
    `store`: a saved plan applies once), and a plan that planning its desired document against
    the tenant now does not reproduce field for field: the tenant changed, or the file was
    edited. What comes back is the fresh plan (with the saved metadata): apply, policies and
    the safety gate use it and its desired state, never the file's own change list.
    """
    plan = saved.plan
    if plan.tenant_uri != provider.key:
        raise WrongTenant(f"refused: the plan was made for {plan.tenant_uri}, not {provider.key}")
    if store is not None:
        check_not_applied(plan, store)
    current = provider.read()
    if state_digest(current) != plan.state_digest:  # first: a left member is staleness too
        raise StalePlan(
            f"refused: the tenant {plan.tenant} changed since the plan was made "
            f"({plan.created_at or 'unknown time'}); run `lwr plan` again and review the new plan")
    fresh = _plan_read(saved.desired, current, provider)
    pinned = saved.pin(fresh.plan)
    if pinned.digest == saved.document["plan_digest"]:  # the file's digest matches its content
        return Planned(fresh.desired, fresh.current, pinned)
    where = first_difference(saved.document, pinned.to_json()) or "its plan_digest"
    raise StalePlan(f"refused: the plan was edited or the tenant changed since it was made "
                    f"({plan.created_at or 'unknown time'}): {where}; run `lwr plan FILE "
                    "--out PLAN.json` again and review the new plan")


def check_not_applied(plan: Plan, store: StateStore) -> None:
    """Refuse (exit 3) a saved plan that a finished run of this tenant already applied."""
    run = store.applied_run(plan.tenant_uri, plan.digest)
    if run is not None:
        raise AlreadyApplied(
            f"refused: this plan was applied to {plan.tenant} already, on "
            f"{run.finished_at or run.started_at} by {run.actor} (run {run.run_id}); a saved "
            "plan is applied once: run `lwr plan FILE --out PLAN.json` again for a new one")


def settle_journal(provider: Provider, state: StateLocation,
                   domain: str) -> ApplyResult | None:
    """Nothing to apply: record what a killed apply left in doubt (docs/contract.md#guarantees).

    None when the store was never created (nothing was ever applied through it) or when
    nothing was left unsettled.
    """
    if not state.exists:
        return None
    from contextlib import closing

    from reconciler.apply import settle

    with closing(state.open()) as store:
        return settle(provider, store, domain)


def apply_plan(plan: Plan, provider: Provider, store: StateStore, *, actor: str,
               allow_destructive: bool,
               on_progress: Callable[[int, int], None] | None = None,
               saved: SavedPlan | None = None, checked_against: TenantState | None = None,
               manual: ManualMode = "stop",
               on_manual: ManualStepHandler | None = None) -> ApplyResult:
    """Apply `plan` in order under the lock, journaled and audited (docs/contract.md#guarantees).

    `saved`: `plan` is what `check_saved_plan(saved, ...)` returned; under the lock it is
    planned again and must still be the file (and not applied yet), else nothing is applied.
    `checked_against`: the tenant state that check was made against; when the tenant read
    under the lock equals it, planning again would give the same plan and is skipped.
    `manual`: what manual steps do (reconciler.manual): `ask` calls `on_manual` for each,
    `attested` records them as done, `skip` leaves them (and what depends on them) for the
    next plan, `stop` applies up to the first one and raises ManualStepsPending (exit 3).
    """
    from reconciler.apply import execute

    plan.raise_if_unsafe(allow_destructive=allow_destructive)

    def unchanged_since_plan() -> None:
        # Checked again under the lock: another apply may have landed since planning.
        if saved is not None:
            if checked_against is None or provider.read() != checked_against:
                check_saved_plan(saved, provider, store)
            else:  # the same desired state against the same tenant plans the same
                check_not_applied(saved.plan, store)
        elif state_digest(provider.read()) != plan.state_digest:
            raise StalePlan(f"refused: the tenant {plan.tenant} changed since the plan was "
                            "made; run `lwr plan` again and review the new plan")

    steps = ManualRun(plan.changes, provider, manual, on_manual)
    result = execute(steps.changes, provider, store, actor=actor, plan_digest=plan.digest,
                     domain=plan.tenant, on_progress=on_progress, precheck=unchanged_since_plan)
    steps.finish(result)
    return result


def export_yaml(provider: Provider) -> str:
    """The tenant as a desired-state file that plans to zero changes."""
    return dump_yaml(export_document(provider.read()))


def state_json(state: TenantState) -> dict[str, Any]:
    """`lwr show --format json`: the state with sorted lists."""
    return {
        "tenant": state.domain,
        "directory_size": len(state.directory),
        "channels": {
            name.value: {
                ENABLED.key: ch.enabled,
                "members_mode": MEMBERS_MODE.current(ch),
                **settings.values(name, ch, skip=(ENABLED, MEMBERS_MODE)),
                "members": sorted(ch.members),
                "open_rooms": ch.open_room_total,
            }
            for name, ch in state.channels.items()
        },
    }

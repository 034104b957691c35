"""The library's front door: plan a file, check a saved plan, apply, export, show.

The CLI calls these and only adds printing and prompts; scripts can import them directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.desired import check_against_tenant, load_desired
from reconciler.errors import AlreadyApplied, InputError, Problem, StalePlan, WrongTenant
from reconciler.export import dump_yaml, export_document
from reconciler.files import read_input
from reconciler.manual import ManualMode, ManualRun, ManualStepHandler, annotate
from reconciler.model import DesiredState, TenantState
from reconciler.plan import Plan, make_plan, state_digest
from reconciler.providers.base import Provider

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
    """Load and validate `path`, read the tenant, and plan (SPEC §3); keep the inputs."""
    return plan_loaded(load_desired(path), provider)


def plan_loaded(desired: DesiredState, provider: Provider) -> Planned:
    """Read the tenant and plan an already validated desired state (SPEC §3)."""
    current = provider.read()  # raises on any failed or partial read: never plans from less
    check_against_tenant(desired, current.domain, current.directory)
    return Planned(desired, current,
                   annotate(make_plan(desired, current, provider.key, provider.execution),
                            desired, provider))


def plan_file(path: str | Path, provider: Provider) -> Plan:
    """Load and validate `path`, read the tenant, and plan (SPEC §3)."""
    return plan_desired(path, provider).plan


def load_saved_plan(path: str | Path) -> Plan:
    """Read a plan written by `lwr plan --out`; a damaged file is an input error."""
    source = str(path)
    try:
        data = json.loads(read_input(path).decode("utf-8"))  # a FIFO is refused, not waited on
        plan = Plan.from_json(data, source)
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(source, 0, 0, "", f"cannot read saved plan: {e}")]) from e
    except (ValueError, KeyError, TypeError) as e:
        raise InputError([Problem(source, 0, 0, "", f"not a valid saved plan: {e}",
                                  "write one with `lwr plan FILE --out PLAN.json`")]) from e
    if data.get("plan_digest", plan.digest) != plan.digest:
        # What is applied must be what was reviewed: an edited plan is a different plan.
        raise InputError([Problem(source, 0, 0, "plan_digest",
                                  "the plan was edited after it was made (its changes no longer "
                                  "match its plan_digest)",
                                  "make a new plan with `lwr plan FILE --out PLAN.json`")])
    return plan


def is_saved_plan(path: str | Path) -> bool:
    """Saved plans are JSON files; desired-state files are YAML."""
    return str(path).lower().endswith(".json")


def check_saved_plan(plan: Plan, provider: Provider,
                     store: StateStore | None = None) -> TenantState:
    """Refuse (exit 3) a plan made for another tenant or against another tenant state.

    With `store`, also refuse a plan that was applied already (a saved plan applies once).
    """
    if plan.tenant_uri != provider.key:
        raise WrongTenant(f"refused: the plan was made for {plan.tenant_uri}, not {provider.key}")
    if store is not None:
        check_not_applied(plan, store)
    current = provider.read()
    if state_digest(current) != plan.state_digest:
        raise StalePlan(
            f"refused: the tenant {plan.tenant} changed since the plan was made "
            f"({plan.created_at or 'unknown time'}); run `lwr plan` again and review the new plan")
    return current


def check_not_applied(plan: Plan, store: StateStore) -> None:
    """Refuse (exit 3) a saved plan that a finished run of this tenant already applied."""
    run = store.applied_run(plan.tenant_uri, plan.digest)
    if run is not None:
        raise AlreadyApplied(
            f"refused: this plan was applied to {plan.tenant} already, on "
            f"{run.finished_at or run.started_at} by {run.actor} (run {run.run_id}); a saved "
            "plan is applied once: run `lwr plan FILE --out PLAN.json` again for a new one")


def saved_plan_desired(plan: Plan) -> DesiredState | None:
    """The desired file a saved plan was made from, when it is at hand and unchanged.

    Used to evaluate `target: desired` policies on apply; None when the file is gone or
    differs from the one planned (the plan's desired_digest decides).
    """
    if not plan.source or not plan.desired_digest or not Path(plan.source).is_file():
        return None
    try:
        desired = load_desired(plan.source)
    except InputError:
        return None
    return desired if desired.digest == plan.desired_digest else None


def settle_journal(provider: Provider, state: StateLocation,
                   domain: str) -> ApplyResult | None:
    """Nothing to apply: still record what a killed apply left in doubt (SPEC §6).

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
               saved: bool = False, manual: ManualMode = "stop",
               on_manual: ManualStepHandler | None = None) -> ApplyResult:
    """Apply `plan` in order under the tenant lock, journaled and audited (SPEC §6).

    `saved`: the plan was loaded from a file, so it may be applied once only.
    `manual`: what manual steps do (reconciler.manual): `ask` calls `on_manual` for each,
    `attested` records them as done, `skip` leaves them (and what depends on them) for the
    next plan, `stop` applies up to the first one and raises ManualStepsPending (exit 3).
    """
    from reconciler.apply import execute

    plan.raise_if_unsafe(allow_destructive=allow_destructive)

    def unchanged_since_plan() -> None:
        # Checked again under the lock: another apply may have landed since planning.
        check_saved_plan(plan, provider, store if saved else None)

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
                "enabled": ch.enabled,
                "members_mode": "all" if ch.all_members else "listed",
                "auto_grant_new_members": ch.auto_grant_new_members,
                "restrict_file_transfer": ch.restrict_file_transfer,
                **({"greeting": {"enabled": ch.greeting_enabled,
                                 "message": ch.greeting_message}}
                   if ch.greeting_enabled is not None else {}),
                "members": sorted(ch.members),
                "open_rooms": ch.open_room_total,
            }
            for name, ch in state.channels.items()
        },
    }

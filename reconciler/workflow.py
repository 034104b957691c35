"""The library's front door: plan a file, check a saved plan, apply, export, show.

The CLI calls these and only adds printing and prompts; scripts can import them directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.desired import check_against_tenant, load_desired
from reconciler.errors import InputError, Problem, StalePlan, WrongTenant
from reconciler.export import dump_yaml, export_document
from reconciler.model import TenantState
from reconciler.plan import Plan, make_plan, state_digest
from reconciler.providers.base import Provider

if TYPE_CHECKING:  # apply machinery is imported on apply only: `plan` starts faster
    from reconciler.apply import ApplyResult
    from reconciler.store.base import StateStore


def plan_file(path: str | Path, provider: Provider) -> Plan:
    """Load and validate `path`, read the tenant, and plan (SPEC §3)."""
    desired = load_desired(path)
    current = provider.read()
    check_against_tenant(desired, current.domain, current.directory)
    return make_plan(desired, current, provider.key, provider.execution)


def load_saved_plan(path: str | Path) -> Plan:
    """Read a plan written by `lwr plan --out`; a damaged file is an input error."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Plan.from_json(data, source)
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(source, 0, 0, "", f"cannot read saved plan: {e}")]) from e
    except (ValueError, KeyError, TypeError) as e:
        raise InputError([Problem(source, 0, 0, "", f"not a valid saved plan: {e}",
                                  "write one with `lwr plan FILE --out PLAN.json`")]) from e


def is_saved_plan(path: str | Path) -> bool:
    """Saved plans are JSON files; desired-state files are YAML."""
    return str(path).lower().endswith(".json")


def check_saved_plan(plan: Plan, provider: Provider) -> TenantState:
    """Refuse (exit 3) a plan made for another tenant or against another tenant state."""
    if plan.tenant_uri != provider.key:
        raise WrongTenant(f"refused: the plan was made for {plan.tenant_uri}, not {provider.key}")
    current = provider.read()
    if state_digest(current) != plan.state_digest:
        raise StalePlan(
            f"refused: the tenant {plan.tenant} changed since the plan was made "
            f"({plan.created_at or 'unknown time'}); run `lwr plan` again and review the new plan")
    return current


def apply_plan(plan: Plan, provider: Provider, store: StateStore, *, actor: str,
               allow_destructive: bool,
               on_progress: Callable[[int, int], None] | None = None) -> ApplyResult:
    """Apply `plan` in order under the tenant lock, journaled and audited (SPEC §6)."""
    from reconciler.apply import execute

    plan.raise_if_unsafe(allow_destructive=allow_destructive)

    def unchanged_since_plan() -> None:
        # Checked again under the lock: another apply may have landed since planning.
        check_saved_plan(plan, provider)

    return execute(plan.changes, provider, store, actor=actor, plan_digest=plan.digest,
                   domain=plan.tenant, on_progress=on_progress, precheck=unchanged_since_plan)


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

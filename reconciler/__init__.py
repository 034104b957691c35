"""lineworks-reconciler: LINE WORKS external messaging as code.

The package is a library first; `reconciler.cli` is a thin shell over it. The names in
`__all__` are its public API, what a script uses:

    from reconciler import open_provider, open_store, plan_file, apply_plan, default_actor

    provider = open_provider("local:tenant.db")
    plan = plan_file("company.yaml", provider)
    with open_store(None, "local:tenant.db") as store:
        apply_plan(plan, provider, store, actor=default_actor(), allow_destructive=False)

Importing the package loads nothing else: each name is imported when first used (`lwr
--version` stays fast). Everything not in `__all__` may change without notice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_HOMES = {
    # Open a tenant and its state store.
    "open_provider": "reconciler.providers",
    "open_store": "reconciler.store",
    "Provider": "reconciler.providers.base",
    # Plan a file; load, check and apply a saved plan; export; show.
    "load_desired": "reconciler.desired",
    "plan_file": "reconciler.workflow",
    "load_saved_plan": "reconciler.workflow",
    "check_saved_plan": "reconciler.workflow",
    "apply_plan": "reconciler.workflow",
    "export_yaml": "reconciler.workflow",
    "state_json": "reconciler.workflow",
    "default_actor": "reconciler.store.base",
    "ApplyResult": "reconciler.apply",
    # The model and the plan.
    "ChannelName": "reconciler.model",
    "ChannelState": "reconciler.model",
    "DesiredState": "reconciler.model",
    "TenantState": "reconciler.model",
    "Action": "reconciler.actions",
    "Change": "reconciler.actions",
    "Plan": "reconciler.plan",
    "SavedPlan": "reconciler.saved_plan",
    # Errors: every one a user can cause is an LwrError; Refused ones exit 3.
    "LwrError": "reconciler.errors",
    "InputError": "reconciler.errors",
    "UsageError": "reconciler.errors",
    "FileError": "reconciler.errors",
    "TenantError": "reconciler.errors",
    "TenantRuleError": "reconciler.errors",
    "StateError": "reconciler.errors",
    "Refused": "reconciler.errors",
    "WrongTenant": "reconciler.errors",
    "DestructiveRefused": "reconciler.errors",
    "LockHeld": "reconciler.errors",
    "StalePlan": "reconciler.errors",
    "AlreadyApplied": "reconciler.errors",
    "PolicyDenied": "reconciler.errors",
    "Cancelled": "reconciler.errors",
    "ApplyStopped": "reconciler.stopped",
}

#: The public API; tests/test_public_api.py pins it and checks it matches _HOMES.
__all__ = [
    "Action",
    "AlreadyApplied",
    "ApplyResult",
    "ApplyStopped",
    "Cancelled",
    "Change",
    "ChannelName",
    "ChannelState",
    "DesiredState",
    "DestructiveRefused",
    "FileError",
    "InputError",
    "LockHeld",
    "LwrError",
    "Plan",
    "PolicyDenied",
    "Provider",
    "Refused",
    "SavedPlan",
    "StalePlan",
    "StateError",
    "TenantError",
    "TenantRuleError",
    "TenantState",
    "UsageError",
    "WrongTenant",
    "__version__",
    "apply_plan",
    "check_saved_plan",
    "default_actor",
    "export_yaml",
    "load_desired",
    "load_saved_plan",
    "open_provider",
    "open_store",
    "plan_file",
    "state_json",
]

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ imports on first use
    from reconciler.actions import Action, Change
    from reconciler.apply import ApplyResult
    from reconciler.desired import load_desired
    from reconciler.errors import (
        AlreadyApplied,
        Cancelled,
        DestructiveRefused,
        FileError,
        InputError,
        LockHeld,
        LwrError,
        PolicyDenied,
        Refused,
        StalePlan,
        StateError,
        TenantError,
        TenantRuleError,
        UsageError,
        WrongTenant,
    )
    from reconciler.model import ChannelName, ChannelState, DesiredState, TenantState
    from reconciler.plan import Plan
    from reconciler.providers import open_provider
    from reconciler.providers.base import Provider
    from reconciler.saved_plan import SavedPlan
    from reconciler.stopped import ApplyStopped
    from reconciler.store import open_store
    from reconciler.store.base import default_actor
    from reconciler.workflow import (
        apply_plan,
        check_saved_plan,
        export_yaml,
        load_saved_plan,
        plan_file,
        state_json,
    )


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); AttributeError for anything else."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    return getattr(import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

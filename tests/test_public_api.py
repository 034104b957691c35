"""The package's public API is `reconciler.__all__`: pinned here, so a change to it is a
decision someone makes in this file, not an accident of a refactor."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import reconciler
from reconciler.providers.local import init_demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"

PUBLIC = [
    # open a tenant and its state store
    "open_provider",
    "open_store",
    "Provider",
    # plan a file; load, check and apply a saved plan; export; show
    "load_desired",
    "plan_file",
    "load_saved_plan",
    "check_saved_plan",
    "apply_plan",
    "export_yaml",
    "state_json",
    "default_actor",
    "ApplyResult",
    # the model and the plan
    "ChannelName",
    "ChannelState",
    "DesiredState",
    "TenantState",
    "Action",
    "Change",
    "Plan",
    "SavedPlan",
    # errors
    "LwrError",
    "InputError",
    "UsageError",
    "FileError",
    "TenantError",
    "TenantRuleError",
    "StateError",
    "Refused",
    "WrongTenant",
    "DestructiveRefused",
    "LockHeld",
    "StalePlan",
    "AlreadyApplied",
    "PolicyDenied",
    "Cancelled",
    "ApplyStopped",
    "__version__",
]


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(reconciler.__all__) == sorted(PUBLIC)
    assert len(set(reconciler.__all__)) == len(reconciler.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_imports_and_is_the_real_thing(name: str) -> None:
    value = getattr(reconciler, name)
    if name != "__version__":
        home = importlib.import_module(reconciler._HOMES[name])
        assert getattr(home, name) is value
        assert getattr(value, "__module__", "").startswith("reconciler")
    assert name in dir(reconciler)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'execute'"):
        reconciler.execute  # noqa: B018  (not public: the executor is internal)


def _python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_package_loads_nothing_else(tmp_path: Path) -> None:
    """`lwr --version` and `import reconciler` pay for no module they do not use."""
    out = _python(
        """
        import sys
        import reconciler
        print(reconciler.__version__)
        print(sorted(m for m in sys.modules if m.startswith("reconciler.")))
    """,
        tmp_path,
    )
    assert out.splitlines() == [reconciler.__version__, "[]"]


def test_a_script_plans_and_applies_with_the_public_api_only(tmp_path: Path) -> None:
    with init_demo(tmp_path / "tenant.db"):
        pass
    out = _python(
        f"""
        from reconciler import (ApplyResult, Plan, apply_plan, default_actor, open_provider,
                                open_store, plan_file, state_json)

        uri = "local:{tmp_path / "tenant.db"}"
        provider = open_provider(uri)
        try:
            plan = plan_file({str(EXAMPLE)!r}, provider)
            assert isinstance(plan, Plan) and plan.changes
            with open_store(None, uri) as store:
                result = apply_plan(plan, provider, store, actor=default_actor(),
                                    allow_destructive=True)
            assert isinstance(result, ApplyResult)
            assert not plan_file({str(EXAMPLE)!r}, provider).changes
            print(state_json(provider.read())["tenant"])
        finally:
            provider.close()
    """,
        tmp_path,
    )
    assert out.strip() == "example.co.jp"

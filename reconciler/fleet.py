"""Many tenants: plan or apply a directory of desired files, one file a tenant.

Each file's `tenant:` names the domain; its optional `target:` URI says which tenant it goes
to (only which: reconciler.targets.file_target), else the `--tenant` template with `{tenant}`
replaced by the domain. Two files for one tenant, however its URI is spelled, are both
refused before any tenant is touched. Every URI in a result is redacted. Files run with bounded
concurrency (a thread pool); each worker opens its own provider and state store, so SQLite
connections stay in the thread that made them. One tenant's failure does not stop the others
unless `fail_fast`. `run_loaded` runs what was loaded elsewhere (the saved plans of a PLANDIR,
reconciler.plandir) the same way, and a command may bring its own step per tenant (`each`:
drift, validate, reconciler.fleet_runs). This module returns results (reconciler.render.fleet
shows them); it never prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import workflow
from reconciler.desired import load_desired
from reconciler.errors import ExitCode, UsageError
from reconciler.fleet_results import (
    OUTCOMES as OUTCOMES,
)
from reconciler.fleet_results import (
    TenantOutcome as TenantOutcome,
)
from reconciler.fleet_results import (
    TenantResult as TenantResult,
)
from reconciler.fleet_results import (
    exit_code as exit_code,
)
from reconciler.fleet_results import (
    failed as failed,
)
from reconciler.fleet_results import (
    succeeded as succeeded,
)
from reconciler.i18n import Said, listing
from reconciler.plan import Plan
from reconciler.providers import open_provider
from reconciler.stopped import ApplyStopped
from reconciler.store import StateLocation
from reconciler.targets import file_target
from reconciler.uris import redact, tenant_key

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult, ProgressCallback
    from reconciler.manual import ManualMode, ManualStep
    from reconciler.model import DesiredState
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.saved_plan import SavedPlan
    from reconciler.store.base import LockHolder


@dataclass(frozen=True)
class FleetOptions:
    """How a directory is run: the same for every file in it."""

    tenant_template: str
    rules: Sequence[PolicyRule] = ()
    apply: bool = False
    allow_destructive: bool = False
    manual: ManualMode = "stop"
    parallel: int = 1
    fail_fast: bool = False
    actor: str = "lwr"
    #: --state: one store for every tenant (default: state.db beside each local tenant).
    state_uri: str | None = None
    #: --lock-timeout: seconds each tenant's apply waits for a lock another apply holds.
    lock_timeout: float = 0.0
    #: Progress of one tenant's apply, given its domain (the CLI's plain lines); None: quiet.
    progress: Callable[[str], AbstractContextManager[ProgressCallback | None]] | None = None


def desired_files(directory: str | Path) -> list[Path]:
    """The directory's `*.yaml` and `*.yml` files, sorted by name (not recursive)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(Said.of("{path} is not a directory", path=str(directory)))
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".yaml", ".yml")
    )


@dataclass(frozen=True)
class _Loaded:
    """A desired file (or saved plan) validated and sent to its tenant, or the result that
    says why not."""

    path: Path
    desired: DesiredState | None = None
    uri: str | None = None
    key: str | None = None  # the tenant's identity (reconciler.uris.tenant_key)
    failed: TenantResult | None = None
    saved: SavedPlan | None = None  # `lwr apply PLANDIR`: the plan `desired` came from


#: What a command does to one loaded tenant (`failed` unset); raising is that tenant's error.
TenantRun = Callable[[_Loaded, FleetOptions], TenantResult]


def run_fleet(
    directory: str | Path, options: FleetOptions, each: TenantRun | None = None
) -> list[TenantResult]:
    """Plan (or apply, with `options.apply`; or `each`) every desired file of `directory`;
    results in file-name order."""
    if options.parallel < 1:
        raise UsageError(Said.of("--parallel must be at least 1"))
    files = desired_files(directory)
    if not files:
        raise UsageError(Said.of("no *.yaml or *.yml desired files in {path}", path=str(directory)))
    with ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="lwr-load") as pool:
        loaded = list(pool.map(lambda p: _load(p, options), files))
    return run_loaded(loaded, options, each)


def run_loaded(
    loaded: Sequence[_Loaded], options: FleetOptions, each: TenantRun | None = None
) -> list[TenantResult]:
    """Run `each` (default: plan, or apply) on every loaded tenant; results in order.

    Everything is loaded first, so that two files sent to one tenant are both refused before
    any tenant is touched (whichever ran second would undo the first).
    """
    stop = threading.Event()  # set on the first failure with fail_fast: later files skip
    run = each or _run_one

    def one(loaded: _Loaded) -> TenantResult:
        if stop.is_set():
            return TenantResult(
                str(loaded.path),
                "?",
                None,
                "skipped",
                ExitCode.OK,
                message=Said.of("not run: an earlier tenant failed (--fail-fast)"),
            )
        result = loaded.failed
        if result is None:
            try:
                result = run(loaded, options)
            except Exception as e:  # one tenant's failure, bug or outage must not stop others
                tenant = loaded.desired.tenant if loaded.desired else "?"
                result = failed(str(loaded.path), tenant, loaded.uri, None, None, e)
        if options.fail_fast and result.exit_code:
            stop.set()
        return result

    checked = _one_file_per_tenant(list(loaded))
    with ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="lwr-tenant") as pool:
        return list(pool.map(one, checked))


def _load(path: Path, options: FleetOptions) -> _Loaded:
    tenant = "?"
    uri: str | None = None
    try:
        desired = load_desired(path)
        tenant = desired.tenant
        uri = file_target(
            (desired.document or {}).get("target"), tenant, options.tenant_template, _where(desired)
        )
        key = tenant_key(uri)
    except Exception as e:  # one file's mistake, or bug, must not stop the others
        return _Loaded(path, failed=failed(str(path), tenant, uri, None, None, e))
    return _Loaded(path, desired, uri, key)


def _where(desired: DesiredState) -> str:
    """`FILE:LINE:COLUMN: ` of the file's `target:`, for messages about it."""
    line, column = desired.locate(("target",)) if desired.locate else (0, 0)
    return f"{desired.source}:{line}:{column}: " if line else f"{desired.source}: "


def _one_file_per_tenant(loaded: list[_Loaded]) -> list[_Loaded]:
    """Mark every file that shares its tenant (its resolved key, not the URI as spelled) with
    another file as an error.

    Files sent to one tenant under different `tenant:` domains are left alone: all but one
    are refused as the wrong tenant anyway, before anything is applied.
    """
    files_of: dict[tuple[str, str], list[str]] = {}
    for item in loaded:
        if item.key is not None and item.desired is not None:
            files_of.setdefault((item.key, item.desired.tenant.lower()), []).append(item.path.name)
    result = []
    for item in loaded:
        if item.desired is None or item.uri is None or item.key is None:
            result.append(item)
            continue
        names = files_of[(item.key, item.desired.tenant.lower())]
        if len(names) > 1:
            message = Said.of(
                "{tenant} is the tenant of {n} files ({files}): one desired file per tenant, "
                "so that neither undoes the other",
                tenant=redact(item.key),
                n=len(names),
                files=listing(names),
            )
            item = replace(
                item,
                failed=failed(str(item.path), item.desired.tenant, item.uri, None, None, message),
            )
        result.append(item)
    return result


def _run_one(loaded: _Loaded, options: FleetOptions) -> TenantResult:
    assert loaded.desired is not None and loaded.uri is not None  # else `failed` is set
    file, tenant, uri = str(loaded.path), loaded.desired.tenant, loaded.uri
    ui = _SilentUI(options.progress and partial(options.progress, tenant))
    try:
        if not options.apply:
            return _planned(loaded.desired, uri, options, ui, file)
        done = workflow.apply(
            workflow.ApplyRequest(
                uri,
                loaded.saved or loaded.desired,
                options.actor,
                state_uri=options.state_uri,
                rules=options.rules,
                allow_destructive=options.allow_destructive,
                manual=options.manual,
                confirmed=True,
                lock_timeout=options.lock_timeout,
                fail_fast=options.fail_fast,
            ),
            ui,
        )
    except Exception as e:  # one tenant's failure, bug or outage must not stop the others
        return failed(file, tenant, uri, ui.plan, ui.policy, e)
    result, plan = done.result, done.planned.plan
    if not plan.changes:
        return succeeded(
            file, tenant, uri, plan, done.policy, "in sync", message=_recovery_note(result)
        )
    assert result is not None  # the executor ran
    return succeeded(
        file,
        tenant,
        uri,
        plan,
        done.policy,
        "applied",
        applied=len(result.applied),
        message=Said.counted(
            "{n} change applied (run {run})",
            "{n} changes applied (run {run})",
            len(result.applied),
            run=result.run_id,
        ),
    )


def _planned(
    desired: DesiredState, uri: str, options: FleetOptions, ui: _SilentUI, file: str
) -> TenantResult:
    """`lwr plan DIR`: the plan and its policy findings; the tenant is only read."""
    from reconciler.policy import evaluate

    with closing(open_provider(uri, options.state_uri, readonly=True)) as provider:
        state = StateLocation.resolve(options.state_uri, uri)  # a bad --state fails as on apply
        # The last selection as `lwr plan FILE` reads it: `apply PLANDIR` plans again with it.
        planned = workflow.plan_loaded(desired, provider, lambda: state)
    ui.plan = plan = planned.plan
    ui.policy = policy = evaluate(options.rules, desired=planned.desired, plan=plan)
    policy.raise_if_denied()
    plan.raise_if_unsafe(allow_destructive=True)  # what apply refuses whatever its flags
    return succeeded(
        file, desired.tenant, uri, plan, policy, "changes" if plan.changes else "in sync"
    )


class _SilentUI:
    """`lwr apply DIR` asks nothing and shows nothing while it runs; it keeps the plan and
    policy report for the summary, also of a tenant that is refused or fails."""

    can_ask = False

    def __init__(
        self, progress: Callable[[], AbstractContextManager[ProgressCallback | None]] | None = None
    ) -> None:
        self.plan: Plan | None = None
        self.policy: PolicyReport | None = None
        self._progress = progress

    def show_plan(self, plan: Plan, policy: PolicyReport) -> None:
        """Kept for the summary."""
        self.plan, self.policy = plan, policy

    def show_checklist(self, plan: Plan) -> None:
        """The plan of each tenant is shown after the run, with the summary."""

    def confirm(self, plan: Plan) -> None:
        """Never asked: a directory is applied with --auto-approve only."""

    def progress(self, *, prompting: bool) -> AbstractContextManager[ProgressCallback | None]:
        """No bar (tenants may run in parallel): the caller's per-tenant lines, if any."""
        return self._progress() if self._progress else nullcontext(None)

    def manual_step(self, step: ManualStep) -> bool:
        """Never asked: a directory applies with --manual=attested, skip or stop."""
        return False

    def took_over(self, holder: LockHolder) -> None:
        """Not reported per tenant (the audit log has the run)."""

    def waiting_for_lock(self, holder: LockHolder, timeout: float) -> None:
        """Not reported while tenants run; a tenant still locked after it is refused."""

    def stopped(self, stop: ApplyStopped, total: int) -> None:
        """The failure is the tenant's result message."""


def _recovery_note(result: ApplyResult | None) -> str:
    """Nothing to apply: the summary's words for what a killed apply left and is now
    recovered."""
    if result is None or not result.recovered:
        return ""
    return Said.counted(
        "recorded {n} change of the interrupted run {run} as recovered",
        "recorded {n} changes of the interrupted run {run} as recovered",
        len(result.recovered),
        run=result.run_id,
    )


# The other fleet commands (reconciler.plandir, reconciler.fleet_runs) load, run and report
# their tenants with the same pieces.
Loaded = _Loaded
SilentUI = _SilentUI

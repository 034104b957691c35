"""Many tenants: plan or apply a directory of desired files, one file a tenant.

Each file's `tenant:` names the domain; its optional `target:` URI says where it goes, else
the `--tenant` template with `{tenant}` replaced by the domain. Files run with bounded
concurrency (a thread pool); each worker opens its own provider and state store, so SQLite
connections stay in the thread that made them. One tenant's failure does not stop the others
unless `fail_fast`. This module returns results and renders them as strings; it never prints.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler import workflow
from reconciler.desired import load_desired
from reconciler.errors import LwrError, UsageError
from reconciler.plan import Plan
from reconciler.providers import open_provider

if TYPE_CHECKING:
    from reconciler.manual import ManualMode
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.store.base import StateStore

Outcome = Literal["in sync", "changes", "applied", "refused", "error", "skipped"]
TENANT_PLACEHOLDER = "{tenant}"
EXIT_CHANGES = 2


@dataclass(frozen=True)
class TenantResult:
    """What happened to one desired file of the directory."""

    file: str
    tenant: str  # the file's `tenant:`; "?" when the file could not be read
    uri: str | None  # the tenant URI it went to; None when none could be chosen
    outcome: Outcome
    exit_code: int  # 0 ok, 1 error, 3 refused (2 is decided for the whole run)
    changes: int = 0
    destructive: int = 0
    applied: int = 0
    message: str = ""
    plan: Plan | None = None
    policy: PolicyReport | None = None


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


StoreOpener = Callable[[str], "StateStore"]


def desired_files(directory: str | Path) -> list[Path]:
    """The directory's `*.yaml` and `*.yml` files, sorted by name (not recursive)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"{directory} is not a directory")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in (".yaml", ".yml"))


def target_uri(tenant: str, target: object, template: str) -> str:
    """The file's `target:`, else the template with {tenant} replaced; UsageError if neither."""
    if isinstance(target, str) and target:
        return target
    if TENANT_PLACEHOLDER in template:
        return template.replace(TENANT_PLACEHOLDER, tenant)
    raise UsageError(f"no target: in the file and --tenant {template!r} has no {{tenant}} "
                     "placeholder: add target: URI to the file or pass e.g. "
                     "--tenant 'local:tenants/{tenant}.db'")


def run_fleet(directory: str | Path, options: FleetOptions,
              open_store: StoreOpener | None = None) -> list[TenantResult]:
    """Plan (or apply, with `options.apply` and `open_store`) every desired file of
    `directory`; results in file-name order."""
    if options.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if options.apply and open_store is None:
        raise UsageError("applying a directory needs a state store")
    files = desired_files(directory)
    if not files:
        raise UsageError(f"no *.yaml or *.yml desired files in {directory}")
    stop = threading.Event()  # set on the first failure with fail_fast: later files skip

    def one(path: Path) -> TenantResult:
        if stop.is_set():
            return TenantResult(str(path), "?", None, "skipped", 0,
                                message="not run: an earlier tenant failed (--fail-fast)")
        result = _run_one(path, options, open_store)
        if options.fail_fast and result.exit_code:
            stop.set()
        return result

    with ThreadPoolExecutor(max_workers=options.parallel,
                            thread_name_prefix="lwr-tenant") as pool:
        return list(pool.map(one, files))


def _run_one(path: Path, options: FleetOptions,
             open_store: StoreOpener | None) -> TenantResult:
    from reconciler.policy import evaluate

    file, tenant, uri = str(path), "?", None
    plan: Plan | None = None
    policy: PolicyReport | None = None
    try:
        desired = load_desired(path)
        tenant = desired.tenant
        uri = target_uri(tenant, (desired.document or {}).get("target"),
                         options.tenant_template)
        provider = open_provider(uri)
        try:
            planned = workflow.plan_desired(path, provider)
            plan = planned.plan
            policy = evaluate(options.rules, desired=planned.desired, plan=plan)
            policy.raise_if_denied()
            if not options.apply or not plan.changes:
                return _done(file, tenant, uri, plan, policy,
                             "changes" if plan.changes else "in sync")
            plan.raise_if_unsafe(allow_destructive=options.allow_destructive)
            assert open_store is not None  # checked in run_fleet
            store = open_store(uri)
            try:
                result = workflow.apply_plan(plan, provider, store, actor=options.actor,
                                             allow_destructive=options.allow_destructive,
                                             manual=options.manual)
            finally:
                store.close()
            return _done(file, tenant, uri, plan, policy, "applied",
                         applied=len(result.applied),
                         message=f"{len(result.applied)} changes applied (run {result.run_id})")
        finally:
            provider.close()
    except LwrError as e:
        outcome: Outcome = "refused" if e.exit_code == 3 else "error"
        return _failed(file, tenant, uri, plan, policy, outcome, e.exit_code, str(e))
    except Exception as e:  # one tenant's bug or outage must not stop the others
        return _failed(file, tenant, uri, plan, policy, "error", 1,
                       f"Internal error: {type(e).__name__}: {e}")


def _done(file: str, tenant: str, uri: str, plan: Plan, policy: PolicyReport,
          outcome: Outcome, applied: int = 0, message: str = "") -> TenantResult:
    return TenantResult(file, tenant, uri, outcome, 0, len(plan.changes),
                        len(plan.destructive), applied, message, plan, policy)


def _failed(file: str, tenant: str, uri: str | None, plan: Plan | None,
            policy: PolicyReport | None, outcome: Outcome, code: int,
            message: str) -> TenantResult:
    return TenantResult(file, tenant, uri, outcome, code,
                        len(plan.changes) if plan else 0,
                        len(plan.destructive) if plan else 0, 0, message, plan, policy)


def exit_code(results: Sequence[TenantResult], *, detailed: bool) -> int:
    """1 if any errored, else 3 if any was refused, else 2 (with `detailed`) if any has
    changes, else 0. Skipped tenants count for nothing."""
    codes = {r.exit_code for r in results}
    if 1 in codes or any(c not in (0, 3) for c in codes):
        return 1
    if 3 in codes:
        return 3
    if detailed and any(r.outcome == "changes" for r in results):
        return EXIT_CHANGES
    return 0


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def summary_text(results: Sequence[TenantResult]) -> str:
    """The summary table: tenant, file, changes, destructive, result."""
    rows = [("tenant", "file", "changes", "destructive", "result")]
    rows += [(r.tenant, Path(r.file).name, str(r.changes), str(r.destructive), r.outcome)
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {o: sum(1 for r in results if r.outcome == o) for o in
              ("in sync", "changes", "applied", "refused", "error", "skipped")}
    lines.append("")
    lines.append(f"{len(results)} tenants: " + ", ".join(f"{n} {o}" for o, n in counts.items()
                                                         if n))
    for r in results:
        if r.outcome in ("refused", "error"):
            lines.append(f"{Path(r.file).name}: {_first_line(r.message)}")
    return "\n".join(lines) + "\n"


def render_text(results: Sequence[TenantResult], *, color: bool = False) -> str:
    """Each tenant's plan (or failure) under a header, then the summary table."""
    from reconciler.render import renderer_for

    parts: list[str] = []
    for r in results:
        parts.append(f"=== {r.tenant} ({Path(r.file).name}"
                     + (f" → {r.uri}" if r.uri else "") + f"): {r.outcome} ===\n")
        if r.plan is not None:
            parts.append(renderer_for("text", color=color, policy=r.policy).render(r.plan))
        if r.message:
            parts.append(r.message.rstrip("\n") + "\n")
        parts.append("\n")
    parts.append(summary_text(results))
    return "".join(parts)


def render_markdown(results: Sequence[TenantResult]) -> str:
    """A summary table, then one collapsed <details> section per tenant."""
    from reconciler.render.markdown import PlanMarkdown, md_code, md_escape

    lines = [f"### lwr plan for {len(results)} tenants", "",
             "| tenant | file | changes | destructive | result |",
             "|---|---|--:|--:|---|"]
    lines += [f"| {md_code(r.tenant)} | {md_code(Path(r.file).name)} | {r.changes} | "
              f"{r.destructive} | {r.outcome} |" for r in results]
    lines.append("")
    for r in results:
        lines += ["<details>",
                  f"<summary>{md_escape(r.tenant)} ({md_escape(Path(r.file).name)}): "
                  f"{r.outcome}</summary>",
                  ""]
        if r.plan is not None:
            lines.append(PlanMarkdown(policy=r.policy).render(r.plan).rstrip("\n"))
            lines.append("")
        if r.message:
            lines += [*(f"> {md_escape(line)}" for line in r.message.rstrip("\n").splitlines()), ""]
        lines += ["</details>", ""]
    return "\n".join(lines)


def render_json(results: Sequence[TenantResult], code: int) -> str:
    """The results as JSON: per tenant its summary and, when made, its plan."""
    from reconciler.render import renderer_for

    tenants = []
    for r in results:
        entry: dict[str, object] = {
            "tenant": r.tenant, "file": r.file, "target": r.uri, "result": r.outcome,
            "exit_code": r.exit_code, "changes": r.changes, "destructive": r.destructive,
            "message": r.message}
        if r.plan is not None:
            entry["plan"] = json.loads(renderer_for("json").render(r.plan))
        tenants.append(entry)
    return json.dumps({"exit_code": code, "tenants": tenants}, ensure_ascii=False,
                      indent=2) + "\n"

"""apply: confirmation, manual steps, progress, and what a stopped apply says."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import workflow
from reconciler.cli.common import (
    cli,
    color,
    fleet_options,
    load_rules,
    policy_options,
    provider_for,
    state_for,
    state_option,
    store_for,
    tenant_option,
)
from reconciler.cli.plans import emit_fleet
from reconciler.errors import Cancelled, LwrError, StateError, UsageError
from reconciler.manual import ManualMode, ManualStep, checklist, split
from reconciler.plan import Plan
from reconciler.providers.base import Provider
from reconciler.render import renderer_for
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.policy import PolicyRule


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--allow-destructive", is_flag=True,
              help="Allow turning channels off and large member removals.")
@policy_options
@click.option("--manual", "manual", type=click.Choice(["ask", "attested", "skip"]),
              default=None,
              help="Manual steps (settings with no public API): ask = wait for the admin to "
                   "confirm each (default on a terminal); attested = they are done already; "
                   "skip = leave them, and what depends on them, for the next plan. Without "
                   "a terminal and without this option, apply stops before them (exit 3).")
@fleet_options
def apply(file: str, tenant_uri: str, state_uri: str | None, auto_approve: bool,
          allow_destructive: bool, policy_dirs: tuple[str, ...],
          no_default_policies: bool, manual: str | None, parallel: int,
          fail_fast: bool) -> int:
    """Plan FILE (or load a saved PLAN.json), check policies, confirm, and apply in order.

    FILE may be a directory of desired files, one a tenant (needs --auto-approve).
    """
    from reconciler.policy import evaluate

    rules = load_rules(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        return _apply_dir(file, tenant_uri, state_uri, auto_approve, allow_destructive, rules,
                          manual, parallel, fail_fast)
    saved = workflow.load_saved_plan(file) if workflow.is_saved_plan(file) else None
    with provider_for(tenant_uri, state_uri) as provider:
        if saved is not None:
            # What is shown, checked and applied is the saved plan's desired state planned
            # again, once it reproduces the file; never the file's own change list.
            with store_for(state_uri, tenant_uri) as store:  # refuse a replay before showing it
                planned = workflow.check_saved_plan(saved, provider, store)
        else:
            planned = workflow.plan_desired(file, provider)
        the_plan, desired = planned.plan, planned.desired
        policy = evaluate(rules, desired=desired, plan=the_plan)
        click.echo(renderer_for("text", color=color(), policy=policy).render(the_plan),
                   nl=False)
        policy.raise_if_denied()
        if not the_plan.changes:
            _settle_journal(state_uri, tenant_uri, provider, the_plan.tenant)
            return 0
        the_plan.raise_if_unsafe(allow_destructive=allow_destructive)
        mode = _manual_mode(manual)
        click.echo(printable(checklist(the_plan.changes)), nl=False)
        if not auto_approve:
            _confirm(the_plan)
        with store_for(state_uri, tenant_uri) as store, \
                _progress(enabled=mode != "ask") as on_progress:
            from reconciler.apply import default_actor, partial_result

            try:
                result = workflow.apply_plan(the_plan, provider, store, actor=default_actor(),
                                             allow_destructive=allow_destructive,
                                             on_progress=on_progress, saved=saved,
                                             checked_against=planned.current,
                                             manual=mode, on_manual=_ask_manual)
            except (LwrError, KeyboardInterrupt) as e:
                partial = partial_result(e) or getattr(e, "result", None)
                if partial is not None:
                    _echo_takeover(partial)
                    click.echo(printable(_stopped_message(e, partial, len(the_plan.changes))),
                               err=True)
                raise
    _echo_takeover(result)
    recovered = f", {len(result.recovered)} recovered from an interrupted run" \
        if result.recovered else ""
    click.echo(f"Apply complete: {len(result.applied)} changes applied{recovered} "
               f"(run {result.run_id}).")
    if mode == "skip" and (held := split(the_plan.changes, "skip").held):
        click.echo(f"Left for the next plan: {len(held)} change(s), manual steps and what "
                   "depends on them (tighten before loosen).")
    return 0


def _apply_dir(directory: str, tenant_uri: str, state_uri: str | None, auto_approve: bool,
               allow_destructive: bool, rules: tuple[PolicyRule, ...], manual: str | None,
               parallel: int, fail_fast: bool) -> int:
    """`lwr apply DIR`: every tenant of the directory, without prompts (reconciler.fleet)."""
    from reconciler import fleet
    from reconciler.apply import default_actor
    if not auto_approve:
        raise UsageError("applying a directory asks no questions: review `lwr plan "
                         f"{directory}` and pass --auto-approve")
    if manual == "ask":
        raise UsageError("--manual=ask is for a single file; use --manual=attested or "
                         "--manual=skip with a directory")
    mode: ManualMode = "attested" if manual == "attested" else \
        "skip" if manual == "skip" else "stop"

    results = fleet.run_fleet(directory, fleet.FleetOptions(
        tenant_template=tenant_uri, rules=rules, apply=True,
        allow_destructive=allow_destructive, manual=mode, parallel=parallel,
        fail_fast=fail_fast, actor=default_actor(), state_uri=state_uri))
    return emit_fleet(results, "text", False)


def _manual_mode(option: str | None) -> ManualMode:
    """--manual as given; else ask on a terminal, stop before manual steps without one."""
    if option is None:
        return "ask" if sys.stdin.isatty() else "stop"
    if option == "ask" and not sys.stdin.isatty():
        raise UsageError("--manual=ask needs a terminal to answer on; use --manual=attested "
                         "or --manual=skip in a pipeline")
    return "ask" if option == "ask" else "attested" if option == "attested" else "skip"


def _ask_manual(step: ManualStep) -> bool:
    """Show one manual step and wait until the admin says it is done (or stops)."""
    click.echo(printable(f"\nManual step {step.number}/{step.total} ({step.change.id})\n"
                         f"  In {step.path}\n  {step.todo}."), err=True)
    while True:
        answer = click.prompt("Type 'done' once saved in the console, or 'stop' to stop here",
                              default="", show_default=False, err=True).strip().lower()
        if answer in ("done", "stop"):
            return answer == "done"


def _settle_journal(state_uri: str | None, tenant_uri: str, provider: Provider,
                    domain: str) -> None:
    """Nothing to apply: record what a killed apply left in doubt (docs/contract.md#guarantees)."""
    result = workflow.settle_journal(provider, state_for(state_uri, tenant_uri), domain)
    if result is not None:
        _echo_takeover(result)
        if result.recovered:
            click.echo(f"Recorded {len(result.recovered)} change(s) of the interrupted run "
                       f"{result.run_id} as recovered: they were in effect already.")


def _echo_takeover(result: Any) -> None:
    """Say so when this apply took over the lock of a dead process (docs/contract.md#guarantees)."""
    stale = getattr(result, "took_over", None)
    if stale is not None:
        click.echo(printable(f"Took over the lock of {stale.tenant_key} left by "
                             f"{stale.describe()}: {stale.gone_because}. Its unfinished "
                             "changes were checked against the tenant first."), err=True)


def _stopped_message(error: BaseException, partial: Any, total: int) -> str:
    """Why an apply ended early, what it did, and that a re-run finishes it."""
    done = f"{len(partial.applied)} of {total} changes applied (run {partial.run_id})"
    if isinstance(error, KeyboardInterrupt):
        from reconciler.apply import stop_signal

        signum = stop_signal(error)
        if signum is not None:  # asked to stop: the batch in flight finished first
            return (f"Apply stopped by {signal.Signals(signum).name} between batches: {done}. "
                    "The journal is consistent and the lock is released: run apply again to "
                    "finish the rest.")
        return (f"Apply interrupted: {done}. The lock is released; run apply again: it checks "
                "the batch that was in flight against the tenant and finishes the rest.")
    if isinstance(error, StateError):
        return (f"Apply stopped because the state store failed: {done}. The batch in flight "
                "may have reached the tenant without being journaled: once the store is "
                "reachable, run apply again; it checks that batch against the tenant and "
                "finishes the rest.")
    failed = f"; stopped at {partial.failed}" if partial.failed else ""
    return (f"Apply stopped: {done}{failed}. The journal is consistent: fix the cause and run "
            "apply again to finish.")


def _confirm(the_plan: Plan) -> None:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation: stdin is not a terminal; "
                         "review the plan and pass --auto-approve")
    answer = click.prompt(
        f"Apply these {len(the_plan.changes)} changes to {the_plan.tenant}? "
        "Only 'yes' will be accepted", default="", show_default=False,
        err=True)  # on stderr: stdout may be piped into a file or `tail`
    if answer.strip() != "yes":
        raise Cancelled("Apply cancelled; nothing was changed.")


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar with ETA on a terminal; nothing when piped (or while prompting)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("applying", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update



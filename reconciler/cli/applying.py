"""apply: the terminal side of the apply flow (reconciler.workflow.apply): confirmation,
manual steps, progress, and what a stopped apply says."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import workflow
from reconciler.cli.common import (
    cli,
    color,
    fleet_options,
    load_rules,
    policy_options,
    state_option,
    tenant_option,
)
from reconciler.cli.plans import emit_fleet
from reconciler.errors import Cancelled, ExitCode, StateError, UsageError
from reconciler.manual import ManualMode, ManualStep
from reconciler.plan import Plan
from reconciler.render import checklist, renderer_for
from reconciler.stopped import ApplyStopped
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.apply import ProgressCallback
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.store.base import LockHolder


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--allow-destructive",
    is_flag=True,
    help="Allow turning channels off and large member removals.",
)
@policy_options
@click.option(
    "--manual",
    "manual",
    type=click.Choice(["ask", "attested", "skip"]),
    default=None,
    help="Manual steps (settings with no public API): ask = wait for the admin to "
    "confirm each (default on a terminal); attested = they are done already; "
    "skip = leave them, and what depends on them, for the next plan. Without "
    "a terminal and without this option, apply stops before them (exit 3).",
)
@fleet_options
def apply(
    file: str,
    tenant_uri: str,
    state_uri: str | None,
    auto_approve: bool,
    allow_destructive: bool,
    policy_dirs: tuple[str, ...],
    no_default_policies: bool,
    manual: str | None,
    parallel: int,
    fail_fast: bool,
) -> int:
    """Plan FILE (or load a saved PLAN.json), check policies, confirm, and apply in order.

    FILE may be a directory of desired files, one a tenant (needs --auto-approve).
    """
    from reconciler.apply import default_actor

    rules = load_rules(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        return _apply_dir(
            file,
            tenant_uri,
            state_uri,
            auto_approve,
            allow_destructive,
            rules,
            manual,
            parallel,
            fail_fast,
        )
    done = workflow.apply(
        workflow.ApplyRequest(
            tenant_uri,
            file,
            default_actor(),
            state_uri=state_uri,
            rules=rules,
            allow_destructive=allow_destructive,
            manual=_MODES.get(manual or ""),
            confirmed=auto_approve,
        ),
        TerminalUI(),
    )
    _echo_done(done)
    return ExitCode.OK


_MODES: dict[str, ManualMode] = {"ask": "ask", "attested": "attested", "skip": "skip"}


def _echo_done(done: workflow.Applied) -> None:
    """The last lines: what was applied (or recovered, when there was nothing to apply)."""
    result = done.result
    if not done.planned.plan.changes:
        if result is not None and result.recovered:
            click.echo(
                f"Recorded {len(result.recovered)} change(s) of the interrupted run "
                f"{result.run_id} as recovered: they were in effect already."
            )
        return
    assert result is not None  # the executor ran
    recovered = (
        f", {len(result.recovered)} recovered from an interrupted run" if result.recovered else ""
    )
    click.echo(
        f"Apply complete: {len(result.applied)} changes applied{recovered} (run {result.run_id})."
    )
    if done.held:
        click.echo(
            f"Left for the next plan: {len(done.held)} change(s), manual steps and what "
            "depends on them (tighten before loosen)."
        )


def _apply_dir(
    directory: str,
    tenant_uri: str,
    state_uri: str | None,
    auto_approve: bool,
    allow_destructive: bool,
    rules: tuple[PolicyRule, ...],
    manual: str | None,
    parallel: int,
    fail_fast: bool,
) -> int:
    """`lwr apply DIR`: every tenant of the directory, without prompts (reconciler.fleet)."""
    from reconciler import fleet
    from reconciler.apply import default_actor

    if not auto_approve:
        raise UsageError(
            "applying a directory asks no questions: review `lwr plan "
            f"{directory}` and pass --auto-approve"
        )
    if manual == "ask":
        raise UsageError(
            "--manual=ask is for a single file; use --manual=attested or "
            "--manual=skip with a directory"
        )
    results = fleet.run_fleet(
        directory,
        fleet.FleetOptions(
            tenant_template=tenant_uri,
            rules=rules,
            apply=True,
            allow_destructive=allow_destructive,
            manual=_MODES.get(manual or "", "stop"),
            parallel=parallel,
            fail_fast=fail_fast,
            actor=default_actor(),
            state_uri=state_uri,
        ),
    )
    return emit_fleet(results, "text", False)


class TerminalUI:
    """`lwr apply FILE|PLAN` on a terminal or in a pipeline: the plan and checklist on stdout,
    prompts, progress and what a stopped apply did on stderr (stdout may be piped)."""

    @property
    def can_ask(self) -> bool:
        """Manual steps are asked for only with a terminal to answer on."""
        return sys.stdin.isatty()

    def show_plan(self, plan: Plan, policy: PolicyReport) -> None:
        """The plan as `lwr plan` shows it, policy findings included."""
        click.echo(renderer_for("text", color=color(), policy=policy).render(plan), nl=False)

    def show_checklist(self, plan: Plan) -> None:
        """The manual steps of the plan, in the order they come."""
        click.echo(printable(checklist.checklist(plan.changes)), nl=False)

    def confirm(self, plan: Plan) -> None:
        """Only 'yes' applies; without a terminal, refuse to guess."""
        if not sys.stdin.isatty():
            raise UsageError(
                "refusing to apply without confirmation: stdin is not a terminal; "
                "review the plan and pass --auto-approve"
            )
        answer = click.prompt(
            f"Apply these {len(plan.changes)} changes to {plan.tenant}? "
            "Only 'yes' will be accepted",
            default="",
            show_default=False,
            err=True,
        )  # on stderr: stdout may be piped into a file or `tail`
        if answer.strip() != "yes":
            raise Cancelled("Apply cancelled; nothing was changed.")

    def progress(self, *, prompting: bool) -> AbstractContextManager[ProgressCallback | None]:
        """A progress bar on a terminal, except while manual steps prompt on it."""
        return _progress(enabled=not prompting)

    def manual_step(self, step: ManualStep) -> bool:
        """Show one manual step and wait until the admin says it is done (or stops)."""
        click.echo(
            printable(
                f"\nManual step {step.number}/{step.total} ({step.change.id})\n"
                f"  In {checklist.path(step)}\n  {checklist.todo(step)}."
            ),
            err=True,
        )
        while True:
            answer = click.prompt(
                "Type 'done' once saved in the console, or 'stop' to stop here",
                default="",
                show_default=False,
                err=True,
            )
            if answer.strip().lower() in ("done", "stop"):
                return answer.strip().lower() == "done"

    def took_over(self, holder: LockHolder) -> None:
        """Say so when this apply took over a lock left by a dead process."""
        click.echo(
            printable(
                f"Took over the lock of {holder.tenant_key} left by "
                f"{holder.describe()}: {holder.gone_because}. Its unfinished "
                "changes were checked against the tenant first."
            ),
            err=True,
        )

    def stopped(self, stop: ApplyStopped, total: int) -> None:
        """Why the apply ended early, what it did, and that a re-run finishes it."""
        click.echo(printable(_stopped_message(stop, total)), err=True)


def _stopped_message(stop: ApplyStopped, total: int) -> str:
    partial = stop.result
    done = f"{len(partial.applied)} of {total} changes applied (run {partial.run_id})"
    if stop.interrupted:
        if stop.signal is not None:  # asked to stop: the batch in flight finished first
            return (
                f"Apply stopped by {signal.Signals(stop.signal).name} between batches: "
                f"{done}. The journal is consistent and the lock is released: run apply "
                "again to finish the rest."
            )
        return (
            f"Apply interrupted: {done}. The lock is released; run apply again: it checks "
            "the batch that was in flight against the tenant and finishes the rest."
        )
    if isinstance(stop.cause, StateError):
        return (
            f"Apply stopped because the state store failed: {done}. The batch in flight "
            "may have reached the tenant without being journaled: once the store is "
            "reachable, run apply again; it checks that batch against the tenant and "
            "finishes the rest."
        )
    failed = f"; stopped at {partial.failed}" if partial.failed else ""
    return (
        f"Apply stopped: {done}{failed}. The journal is consistent: fix the cause and run "
        "apply again to finish."
    )


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar with ETA on a terminal; nothing when piped (or while prompting)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task("applying", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update

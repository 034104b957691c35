"""apply: the terminal side of the apply flow (reconciler.workflow.apply): confirmation,
manual steps, progress, and what a stopped apply says."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import workflow
from reconciler.actions import Change
from reconciler.cli.common import (
    cli,
    color,
    fleet_options,
    load_rules,
    messages,
    policy_options,
    state_option,
    tenant_option,
)
from reconciler.cli.helptext import N_, Choice
from reconciler.cli.plans import emit_fleet
from reconciler.errors import (
    Cancelled,
    ChangesRefused,
    ExitCode,
    UsageError,
)
from reconciler.i18n import Said
from reconciler.manual import ManualMode, ManualStep
from reconciler.outcomes import ApplyProgress
from reconciler.plan import Plan
from reconciler.render import checklist, renderer_for
from reconciler.render.applied import stopped_message
from reconciler.render.progress import PlainProgress, failure_report
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
@click.option(
    "--auto-approve",
    is_flag=True,
    help=N_(
        "Apply without asking for confirmation. A saved PLAN.json is never asked about (it "
        "is the reviewed plan), so there the flag changes nothing."
    ),
)
@click.option(
    "--lock-timeout",
    "lock_timeout",
    default="0",
    metavar="DURATION",
    help=N_(
        "Wait this long (e.g. 30s, 5m) for a tenant lock another apply holds, then refuse "
        "(exit 3). Default 0: refuse at once. With a directory: per tenant."
    ),
)
@click.option(
    "--allow-destructive",
    is_flag=True,
    help=N_("Allow turning channels off and large member removals."),
)
@policy_options
@click.option(
    "--manual",
    "manual",
    type=Choice(["ask", "attested", "skip"]),
    default=None,
    help=N_(
        "Manual steps (settings with no public API): ask = wait for the admin to "
        "confirm each (default on a terminal); attested = they are done already; "
        "skip = leave them, and what depends on them, for the next plan. Without "
        "a terminal and without this option, apply stops before them (exit 3)."
    ),
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
    lock_timeout: str,
) -> int:
    """Plan FILE (or load a saved PLAN.json), check policies, confirm, and apply in order.

    A saved PLAN.json is applied without asking: it is the plan that was reviewed. FILE may
    be a directory of desired files, one a tenant, or a PLANDIR written by `lwr plan DIR --out
    PLANDIR` (both need --auto-approve); `-` reads the desired file from stdin (needs
    --auto-approve).
    """
    from reconciler.apply import default_actor
    from reconciler.lockwait import parse_duration

    if file == "-" and not auto_approve:  # before reading: the prompt would read the file
        raise UsageError(
            Said.of(
                "the desired file comes from stdin (-), so stdin cannot answer the "
                "confirmation: review `lwr plan -` and pass --auto-approve"
            )
        )
    rules = load_rules(policy_dirs, no_default_policies)
    wait = parse_duration(lock_timeout)
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
            wait,
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
            lock_timeout=wait,
            fail_fast=fail_fast,
        ),
        TerminalUI(),
    )
    _echo_done(done)
    return ExitCode.OK


_MODES: dict[str, ManualMode] = {"ask": "ask", "attested": "attested", "skip": "skip"}


def _echo_done(done: workflow.Applied) -> None:
    """The last lines: what was applied (or recovered, when there was nothing to apply)."""
    from reconciler.render.applied import done_lines

    for line in done_lines(done, messages()):
        click.echo(line)


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
    lock_timeout: float,
) -> int:
    """`lwr apply DIR`: every tenant of the directory, without prompts (reconciler.fleet)."""
    from reconciler import fleet
    from reconciler.apply import default_actor
    from reconciler.plandir import is_plan_dir

    if not auto_approve:
        raise UsageError(
            Said.of(
                "applying a directory asks no questions: review `lwr plan {directory}` and "
                "pass --auto-approve",
                directory=directory,
            )
        )
    if manual == "ask":
        raise UsageError(
            Said.of(
                "--manual=ask is for a single file; use --manual=attested or --manual=skip "
                "with a directory"
            )
        )
    options = fleet.FleetOptions(
        tenant_template=tenant_uri,
        rules=rules,
        apply=True,
        allow_destructive=allow_destructive,
        manual=_MODES.get(manual or "", "stop"),
        parallel=parallel,
        fail_fast=fail_fast,
        actor=default_actor(),
        state_uri=state_uri,
        lock_timeout=lock_timeout,
        progress=_tenant_lines,
    )
    if is_plan_dir(directory):  # `plan DIR --out PLANDIR`: exactly the reviewed plans
        from reconciler.cli.fleets import apply_plan_dir

        results = apply_plan_dir(directory, options)
        return emit_fleet(results, "text", False) if results else ExitCode.OK
    return emit_fleet(fleet.run_fleet(directory, options), "text", False)


@contextmanager
def _tenant_lines(tenant: str) -> Iterator[ProgressCallback]:
    """`lwr apply DIR`: plain progress lines per tenant (tenants may run in parallel)."""
    lines = PlainProgress(
        lambda line: click.echo(printable(line), err=True),
        prefix=f"{tenant}: ",
        messages=messages(),
    )
    with lines.heartbeat():
        try:
            yield lines
        finally:
            lines.close()


class TerminalUI:
    """`lwr apply FILE|PLAN` on a terminal or in a pipeline: the plan and checklist on stdout,
    prompts, progress and what a stopped apply did on stderr (stdout may be piped)."""

    def __init__(self) -> None:
        self._view: _View | None = None
        self._changes: dict[str, Change] = {}  # the plan's, for the failure report

    @property
    def can_ask(self) -> bool:
        """Manual steps are asked for only with a terminal to answer on."""
        return sys.stdin.isatty()

    def show_plan(self, plan: Plan, policy: PolicyReport) -> None:
        """The plan as `lwr plan` shows it, policy findings included."""
        self._changes = {c.id: c for c in plan.changes}
        view = renderer_for("text", color=color(), policy=policy, messages=messages())
        click.echo(view.render(plan), nl=False)

    def show_checklist(self, plan: Plan) -> None:
        """The manual steps of the plan, in the order they come."""
        click.echo(printable(checklist.checklist(plan.changes, messages())), nl=False)

    def confirm(self, plan: Plan) -> None:
        """Only 'yes' applies; without a terminal, refuse to guess."""
        if not sys.stdin.isatty():
            raise UsageError(
                Said.of(
                    "refusing to apply without confirmation: stdin is not a terminal; "
                    "review the plan and pass --auto-approve"
                )
            )
        t = messages()
        question = t.n_(
            "Apply this {n} change to {tenant}? Only 'yes' will be accepted",
            "Apply these {n} changes to {tenant}? Only 'yes' will be accepted",
            len(plan.changes),
            tenant=plan.tenant,
        )
        answer = click.prompt(
            question,
            default="",
            show_default=False,
            err=True,
        )  # on stderr: stdout may be piped into a file or `tail`
        if answer.strip() != "yes":
            raise Cancelled(t._("Apply cancelled; nothing was changed."))

    def progress(self, *, prompting: bool) -> AbstractContextManager[ProgressCallback | None]:
        """A progress bar on a terminal; plain lines in a pipeline, or while manual steps
        prompt on the terminal (a live bar would draw over the prompt)."""
        self._view = _View()
        return _progress(self._view, bar=sys.stderr.isatty() and not prompting, ask=prompting)

    def manual_step(self, step: ManualStep) -> bool:
        """Show one manual step and wait until the admin says it is done (or stops)."""
        t = messages()
        shown = t._(
            "Manual step {n}/{total} ({id})\n  In {path}\n  {todo}.",
            n=step.number,
            total=step.total,
            id=step.change.id,
            path=checklist.path(step, t),
            todo=checklist.todo(step, t),
        )
        click.echo(printable(f"\n{shown}"), err=True)
        while True:
            answer = click.prompt(
                t._("Type 'done' once saved in the console, or 'stop' to stop here"),
                default="",
                show_default=False,
                err=True,
            )
            if answer.strip().lower() in ("done", "stop"):
                return answer.strip().lower() == "done"

    def took_over(self, holder: LockHolder) -> None:
        """Say so when this apply took over a lock left by a dead process."""
        took = messages()._(
            "Took over the lock of {tenant} left by {holder}: {why}. Its unfinished changes "
            "were checked against the tenant first.",
            tenant=holder.tenant_key,
            holder=holder.describe(),
            why=holder.gone_because,
        )
        click.echo(printable(took), err=True)

    def waiting_for_lock(self, holder: LockHolder, timeout: float) -> None:
        """Who holds the tenant (as `lwr lock list` shows it), once, and how long we wait."""
        from reconciler.lockwait import show_duration
        from reconciler.render.audit import locks_text

        waiting = messages()._(
            "Waiting up to {duration} for the tenant's lock (--lock-timeout):",
            duration=show_duration(timeout),
        )
        click.echo(waiting + "\n" + locks_text([holder], "").rstrip("\n"), err=True)

    def stopped(self, stop: ApplyStopped, total: int) -> None:
        """How far the apply got, why it ended early, and what to do; every refused and
        skipped change when it went on past refusals."""
        view = self._view
        how_far = view.how_far() if view is not None else None
        if view is not None and not view.bar:
            view.plain.close()  # the last count, if not printed yet
        elif how_far:
            click.echo(printable(how_far), err=True)
        if isinstance(stop.cause, ChangesRefused) and not stop.result.failed:
            report = failure_report(stop.result, self._changes, messages())
            click.echo(printable(report), err=True)
            return
        click.echo(printable(stopped_message(stop, total, messages())), err=True)


@contextmanager
def _progress(view: _View, bar: bool, ask: bool) -> Iterator[ProgressCallback]:
    """The rich bar on a terminal (unless manual steps will prompt on it), else plain lines
    on stderr (reconciler.render.progress); with a heartbeat unless a prompt waits for the
    admin (a line every 10 s would run over it)."""
    if bar:
        from reconciler.render.progress import progress_bar

        with progress_bar(sys.stderr, messages()) as update:
            view.bar = True
            yield lambda event: view.track(event, update)
        return
    with nullcontext() if ask else view.plain.heartbeat():
        try:
            yield view.plain
        finally:
            view.plain.close()


class _View:
    """What the apply showed of its progress, for the words a stop or a report begins with."""

    def __init__(self) -> None:
        self.plain = PlainProgress(
            lambda line: click.echo(printable(line), err=True), messages=messages()
        )
        self.bar = False

    def track(self, event: ApplyProgress, update: ProgressCallback) -> None:
        """Feed the bar, and keep the count (silently) for the last words."""
        update(event)
        self.plain.note(event)

    def how_far(self) -> str | None:
        """How far the apply got, as the plain lines say it."""
        return self.plain.summary()

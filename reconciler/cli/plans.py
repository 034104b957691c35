"""validate, plan, show-plan, drift: read-only commands."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.common import (
    cli,
    color,
    compact_options,
    echo_policy,
    fleet_options,
    format_option,
    load_rules,
    markdown_dir_option,
    messages,
    policy_options,
    provider_for,
    state_for,
    state_option,
    store_for,
    tenant_option,
    write_markdown_parts,
    write_output,
)
from reconciler.cli.helptext import N_
from reconciler.cli.lazy import workflow
from reconciler.errors import ExitCode, LwrError, UsageError
from reconciler.i18n import Said
from reconciler.render import renderer_for
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.plan import Plan
    from reconciler.policy import PolicyReport


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--tenant",
    "tenant_uri",
    envvar="LWR_TENANT",
    default=None,
    help=N_("Also check members and `tenant:` against this tenant's directory (env LWR_TENANT)."),
)
def validate(files: tuple[str, ...], tenant_uri: str | None) -> int:
    """Check desired-state FILES: schema, semantics, and the tenant directory if given
    (--tenant or LWR_TENANT). A FILE `-` is read from stdin.

    A directory checks each of its desired files (with a {tenant} --tenant, each against the
    tenant `lwr plan DIR` would send it to) and ends with the fleet's summary table.
    """
    from reconciler.desired import load_desired

    failures: list[LwrError] = []
    codes = [0]
    for file in files:
        if Path(file).is_dir():  # every desired file of it, one a tenant: the fleet's table
            from reconciler.cli.fleets import validate_dir

            codes.append(validate_dir(file, tenant_uri))
            continue
        try:
            desired = load_desired(file)
            if tenant_uri:
                from reconciler.selecting import check_desired  # the tenant's checks only

                with provider_for(tenant_uri, readonly=True) as provider:
                    check_desired(desired, provider)
            click.echo(printable(messages()._("{file}: valid", file=desired.source)))
        except LwrError as e:
            from reconciler.render.checklist import message_of

            failures.append(e)
            t = messages()
            shown = t._("{file}: invalid\n{problems}", file=file, problems=message_of(e, t))
            click.echo(printable(shown), err=True)
    return max([*codes, *(e.exit_code for e in failures)])


def emit_plan(
    plan: Plan,
    fmt: str,
    out: str | None,
    policy: PolicyReport | None = None,
    markdown_dir: str | None = None,
    compact: bool | None = None,
) -> None:
    """Print `plan` as `fmt`; save it to `out`, its markdown parts to `markdown_dir`."""
    if out:
        text = renderer_for("json").render(plan)
        write_output(out, text)
        saved = messages().n_(
            "Saved plan to {out} ({n} change).",
            "Saved plan to {out} ({n} changes).",
            len(plan.changes),
            out=out,
        )
        click.echo(saved, err=True)
    if markdown_dir:
        from reconciler.render.markdown import PlanMarkdown

        parts = PlanMarkdown(policy=policy, compact=compact, messages=messages()).render_parts(plan)
        write_markdown_parts(markdown_dir, parts)
    shown = renderer_for(fmt, color=color(), policy=policy, compact=compact, messages=messages())
    click.echo(shown.render(plan), nl=False)
    if fmt == "json" and policy is not None:
        echo_policy(policy)


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@click.option(
    "--out",
    type=click.Path(),
    help=N_(
        "Save the plan as JSON for apply (not when apply would refuse it: exit 3); with a "
        "directory of files: PLANDIR, one plan a tenant and index.json."
    ),
)
@format_option
@click.option("--detailed-exitcode", is_flag=True, help=N_("Exit 2 when there are changes."))
@policy_options
@markdown_dir_option
@compact_options
@fleet_options
@state_option
def plan(
    file: str,
    tenant_uri: str,
    out: str | None,
    fmt: str,
    detailed_exitcode: bool,
    policy_dirs: tuple[str, ...],
    no_default_policies: bool,
    markdown_dir: str | None,
    compact: bool | None,
    parallel: int,
    fail_fast: bool,
    state_uri: str | None,
) -> int:
    """Read the tenant, diff it with FILE, check policies, and print the ordered changes.

    FILE may be a directory of desired files, one a tenant (README "Many tenants"): each
    goes to its `target:` URI, else to --tenant with {tenant} replaced. FILE `-` reads the
    desired file from stdin.
    """
    from reconciler.policy import evaluate

    rules = load_rules(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        from reconciler import fleet
        from reconciler.cli import fleets

        results = fleet.run_fleet(
            file,
            fleet.FleetOptions(
                tenant_template=tenant_uri,
                rules=rules,
                parallel=parallel,
                fail_fast=fail_fast,
                state_uri=state_uri,
            ),
        )
        if out:  # one saved plan per tenant with changes, and the index (reconciler.plandir)
            fleets.save_plan_dir(results, out, file, state_uri)
        if markdown_dir:
            fleets.write_markdown_dir(results, markdown_dir)
        return emit_fleet(results, fmt, detailed_exitcode)
    with provider_for(tenant_uri, state_uri, readonly=True) as provider:
        planned = workflow.plan_desired(file, provider, lambda: state_for(state_uri, tenant_uri))
    policy = evaluate(rules, desired=planned.desired, plan=planned.plan)
    # What apply would refuse whatever its flags (a protected channel) fails the plan, so a
    # reviewer sees it in the pull request; the flag apply needs is in the plan's footer.
    refusal = planned.plan.gate.refusal(allow_destructive=True)
    if out and (policy.denied or refusal):
        t = messages()
        if policy.denied:
            click.echo(t._("Not saving {out}: policy denies this plan.", out=out), err=True)
        else:
            click.echo(t._("Not saving {out}: apply would refuse this plan.", out=out), err=True)
        out = None  # a refused plan is shown for review, never handed to apply
    emit_plan(planned.plan, fmt, out, policy, markdown_dir, compact)
    policy.raise_if_denied()
    if refusal:
        raise refusal
    return ExitCode.CHANGES if detailed_exitcode and planned.plan.changes else ExitCode.OK


def emit_fleet(results: Any, fmt: str, detailed_exitcode: bool) -> int:
    """Print a directory's results (reconciler.fleet) and return the aggregate exit code."""
    from reconciler.cli.fleets import emit

    return emit(results, fmt, detailed_exitcode)


@cli.command("show-plan")
@click.argument("plan_file", type=click.Path(dir_okay=False))
@format_option
@click.option(
    "--tenant",
    "tenant_uri",
    default=None,
    help=N_(
        "Also check the plan against this tenant (read only) as apply would: exit 3 when "
        "apply would refuse it (stale, another tenant, applied already, a policy deny, the "
        "safety gate). Not read from LWR_TENANT: show-plan renders offline unless asked."
    ),
)
@click.option(
    "--allow-destructive",
    is_flag=True,
    help=N_("With --tenant: check as `apply --allow-destructive` would."),
)
@policy_options
@state_option
@markdown_dir_option
@compact_options
def show_plan(
    plan_file: str,
    fmt: str,
    tenant_uri: str | None,
    allow_destructive: bool,
    policy_dirs: tuple[str, ...],
    no_default_policies: bool,
    state_uri: str | None,
    markdown_dir: str | None,
    compact: bool | None,
) -> int:
    """Render a saved PLAN_FILE without touching the tenant (unless --tenant is given)."""
    from reconciler.policy import evaluate

    rules = load_rules(policy_dirs, no_default_policies)
    saved = workflow.load_saved_plan(plan_file)
    plan = saved.plan
    emit_plan(plan, fmt, None, None, markdown_dir, compact)
    if tenant_uri is None:
        return 0
    # The checks apply makes, in its order and with the same code, read only.
    with provider_for(tenant_uri, state_uri, readonly=True) as provider:
        if state_for(state_uri, tenant_uri).exists:  # none yet: nothing was applied through it
            with store_for(state_uri, tenant_uri, readonly=True) as store:
                planned = workflow.check_saved_plan(saved, provider, store)
        else:
            planned = workflow.check_saved_plan(saved, provider)
    policy = evaluate(rules, desired=planned.desired, plan=planned.plan)
    if fmt == "json":
        echo_policy(policy)
    policy.raise_if_denied()
    if planned.plan.changes:  # as apply: a plan with nothing to do passes the gate
        planned.plan.raise_if_unsafe(allow_destructive=allow_destructive)
    t = messages()
    said = t._(
        "Up to date: {tenant} is as it was when the plan was made ({at}); apply would accept it.",
        tenant=plan.tenant,
        at=plan.created_at or t._("unknown time"),
    )
    click.echo(printable(said), err=True)
    return 0


@cli.command()
@click.argument("file", type=click.Path())
@tenant_option
@format_option
@policy_options
@markdown_dir_option
@fleet_options
@state_option
@click.option(
    "--verify-links",
    is_flag=True,
    help=N_(
        "lineworks: ask the API about each attested member (one request each: 2,000 "
        "members ≈ 8 min at 240/min) and flag those it says have no external permission."
    ),
)
def drift(
    file: str,
    tenant_uri: str,
    fmt: str,
    policy_dirs: tuple[str, ...],
    no_default_policies: bool,
    markdown_dir: str | None,
    parallel: int,
    fail_fast: bool,
    state_uri: str | None,
    verify_links: bool,
) -> int:
    """Report every setting and list where the tenant differs from FILE: exit 0 in sync,
    2 drifted, 1 error (a failed tenant read included), 3 policy deny.

    FILE may be a directory of desired files, one a tenant, as for `lwr plan DIR`.
    """
    from reconciler.drift import drift_report
    from reconciler.policy import evaluate
    from reconciler.render import drift_renderer_for

    rules = load_rules(policy_dirs, no_default_policies)
    if Path(file).is_dir():
        from reconciler.cli.fleets import drift_dir
        from reconciler.fleet import FleetOptions

        if verify_links:  # one request per attested member: asked for a tenant at a time
            raise UsageError(
                Said.of("--verify-links checks one tenant: give it a file, not a directory")
            )

        options = FleetOptions(tenant_uri, rules, parallel=parallel, fail_fast=fail_fast)
        return drift_dir(file, replace(options, state_uri=state_uri), fmt, markdown_dir)
    with provider_for(tenant_uri, state_uri, readonly=True) as provider:
        planned = workflow.plan_desired(file, provider, lambda: state_for(state_uri, tenant_uri))
        found = provider.contradicted(planned.current) if verify_links else ()
    policy = evaluate(rules, desired=planned.desired, plan=planned.plan)
    report = drift_report(planned.desired, planned.current, planned.plan, found)
    if markdown_dir:
        from reconciler.render.drift_markdown import DriftMarkdown

        parts = DriftMarkdown(policy=policy, messages=messages()).render_parts(report)
        write_markdown_parts(markdown_dir, parts)
    view = drift_renderer_for(fmt, color=color(), policy=policy, messages=messages())
    click.echo(view.render(report), nl=False)
    if fmt == "json":
        echo_policy(policy)
    policy.raise_if_denied()
    return ExitCode.OK if report.in_sync else ExitCode.CHANGES

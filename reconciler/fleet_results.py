"""What became of each tenant of a directory: the result of one file, its outcome words, and
the exit code of the whole run (the worst result wins). reconciler.fleet and the other fleet
commands (reconciler.plandir, reconciler.fleet_runs) build these; reconciler.render.fleet shows
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from reconciler.errors import ExitCode, LwrError
from reconciler.i18n import Said, Told, say
from reconciler.manual import ManualStepsPending
from reconciler.stopped import ApplyStopped
from reconciler.uris import redact, scrub

if TYPE_CHECKING:
    from reconciler.drift import DriftReport
    from reconciler.plan import Plan
    from reconciler.policy import PolicyReport

#: What became of one tenant of the directory, as the summary table says it.
TenantOutcome = Literal[
    "in sync", "changes", "drifted", "valid", "exported", "applied", "refused", "error", "skipped"
]
#: Every outcome, in the order the summary line counts them.
OUTCOMES: tuple[TenantOutcome, ...] = get_args(TenantOutcome)


@dataclass(frozen=True)
class TenantResult:
    """What happened to one desired file of the directory."""

    file: str
    tenant: str  # the file's `tenant:`; "?" when the file could not be read
    uri: str | None  # the tenant URI it went to, redacted; None when none could be chosen
    outcome: TenantOutcome
    exit_code: ExitCode  # OK, ERROR or REFUSED (CHANGES is decided for the whole run)
    changes: int = 0
    destructive: int = 0
    applied: int = 0
    message: str = ""
    plan: Plan | None = None
    policy: PolicyReport | None = None
    report: DriftReport | None = None  # `lwr drift DIR`
    #: The manual steps it stopped before, for the view to list (render.checklist).
    pending: ManualStepsPending | None = None


def succeeded(
    file: str,
    tenant: str,
    uri: str,
    plan: Plan,
    policy: PolicyReport,
    outcome: TenantOutcome,
    applied: int = 0,
    message: str = "",
) -> TenantResult:
    """A tenant that planned or applied; the message never shows a secret of the URI."""
    return TenantResult(
        file,
        tenant,
        redact(uri),
        outcome,
        ExitCode.OK,
        len(plan.changes),
        len(plan.destructive),
        applied,
        _scrubbed(message, uri),
        plan,
        policy,
    )


def failed(
    file: str,
    tenant: str,
    uri: str | None,
    plan: Plan | None,
    policy: PolicyReport | None,
    error: Exception | str,
) -> TenantResult:
    """A result that says why (an error, or a message: exit 1); the URI and the message never
    show a secret of the URI."""
    cause = error.cause if isinstance(error, ApplyStopped) else error
    message: str
    if isinstance(cause, LwrError):  # said again in the reader's language (render.fleet)
        code, message = cause.exit_code, Told(cause.said)
    elif isinstance(cause, BaseException):
        code, message = ExitCode.ERROR, f"Internal error: {type(cause).__name__}: {cause}"
    else:
        code, message = ExitCode.ERROR, cause
    message = _scrubbed(message, uri)
    return TenantResult(
        file,
        tenant,
        redact(uri) if uri is not None else None,
        "refused" if code == ExitCode.REFUSED else "error",
        code,
        len(plan.changes) if plan else 0,
        len(plan.destructive) if plan else 0,
        len(error.result.applied) if isinstance(error, ApplyStopped) else 0,
        message,
        plan,
        policy,
        pending=cause if isinstance(cause, ManualStepsPending) else None,
    )


def _scrubbed(message: str, uri: str | None) -> str:
    """`message` never showing a secret of `uri`, and still said in any language (i18n.say)
    when it was a Said or Told."""
    if uri is None:
        return message
    if isinstance(message, Said | Told):
        return Told(lambda t: scrub(say(message, t), uri))
    return scrub(message, uri)


def exit_code(results: Sequence[TenantResult], *, detailed: bool) -> ExitCode:
    """ERROR if any errored, else REFUSED if any was refused, else CHANGES (with `detailed`)
    if any has changes, else OK. Skipped tenants count for nothing."""
    codes = {r.exit_code for r in results}
    if codes - {ExitCode.OK, ExitCode.REFUSED}:
        return ExitCode.ERROR
    if ExitCode.REFUSED in codes:
        return ExitCode.REFUSED
    if detailed and any(r.outcome in ("changes", "drifted") for r in results):
        return ExitCode.CHANGES
    return ExitCode.OK

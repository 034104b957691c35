"""Every error `lwr` can raise, each carrying the exit code the CLI maps it to.

Exit codes follow docs/contract.md#exit-codes: 1 error (bad input, tenant failure), 3 refused.
Also the exit codes themselves (`ExitCode`). `ApplyStopped`, the one error that carries what
an apply did before it stopped, is in reconciler.stopped: it holds the executor's result, so
it lives at the apply layer and this module depends on nothing above the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from reconciler.words import joined

if TYPE_CHECKING:
    from reconciler.i18n import Messages


class ExitCode(IntEnum):
    """What `lwr` exits with; scripts and CI branch on these."""

    OK = 0
    ERROR = 1  # bad input, a tenant or store failure
    CHANGES = 2  # only with --detailed-exitcode (plan, drift): there is something to apply
    REFUSED = 3  # a safety rule refused; nothing was changed by the refused step


class LwrError(Exception):
    """Base of all expected errors; the message is meant for the user as it is."""

    exit_code: ExitCode = ExitCode.ERROR
    #: What the CLI prints before the message. A refusal's message says `refused: …` itself.
    prefix = "Error: "

    def said(self, t: Messages) -> str:
        """The message in `t`'s language: one raised as an `i18n.Said` (or `Told`) is said
        again; any other is shown as raised (English)."""
        from reconciler.i18n import say  # i18n imports this module

        text = self.args[0] if len(self.args) == 1 else None
        return say(text, t) if isinstance(text, str) else str(self)


@dataclass(frozen=True)
class Problem:
    """One problem found in a desired-state file, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # dotted path, e.g. external_messaging.line.members.include[3]
    message: str
    hint: str = ""

    @property
    def where(self) -> str:
        """`FILE:LINE:COL: path`, the same in every language (editors and CI jump to it)."""
        place = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{place}: {self.path or '<document>'}"

    def __str__(self) -> str:
        return joined(f"{self.where}: {self.message}", "\n    hint: ", self.hint)

    def said(self, t: Messages) -> str:
        """The problem in `t`'s language (its message and hint said again when they are
        `i18n.Said`); the location is never translated."""
        from reconciler.i18n import say

        text = f"{self.where}: {say(self.message, t)}"
        if not self.hint:
            return text
        return text + "\n    " + t._("hint: {hint}", hint=say(self.hint, t))


@dataclass(frozen=True)
class Omitted(Problem):
    """Stands for `count` more problems found but not listed one by one.

    A hostile file can hold millions of mistakes; each kind is listed up to a screenful and
    counted beyond, so that memory and output stay bounded.
    """

    count: int = 0


class InputError(LwrError):
    """A file (desired state, saved plan) is invalid; lists every problem at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in problems))

    def said(self, t: Messages) -> str:
        """Every problem in `t`'s language, under a counted head."""
        head = t.n_("{n} problem found:", "{n} problems found:", len(self.problems))
        return "\n".join([head, *(p.said(t) for p in self.problems)])


class UsageError(LwrError):
    """The command was called in a way that cannot work (bad URI, missing option)."""


class FileError(LwrError):
    """A file named on the command line cannot (or may not) be read or written.

    `reason` is the why alone ("No space left on device"), for messages that name the file
    their own way.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class TenantError(LwrError):
    """The tenant could not be read or written; nothing is assumed about its state."""


class TenantRuleError(TenantError):
    """The tenant refused an operation under the console's rules (e.g. list edit while off)."""


class ChangesRefused(TenantRuleError):
    """The tenant refused changes of an apply (exit 1): the rest was applied, except what
    depends on them; the report says which, why, and what to do."""


class Refused(LwrError):
    """A safety rule refused the operation; nothing was changed (exit 3)."""

    exit_code = ExitCode.REFUSED
    prefix = ""  # the message starts with `refused: `


class WrongTenant(Refused):
    """The file names another tenant than the one targeted."""

    prefix = "Error: "  # `FILE:LINE:COL: tenant: …`, located like an input problem


class PlanForAnotherTenant(WrongTenant):
    """A saved plan was made for another tenant than the one targeted."""

    prefix = ""  # the message starts with `refused: `


class DestructiveRefused(Refused):
    """Destructive changes present without --allow-destructive, or a protected channel."""


class LockHeld(Refused):
    """Another apply holds the tenant's lock."""

    prefix = "Error: "  # `tenant … is locked by …`: who holds it, and what to do


class StalePlan(Refused):
    """A saved plan no longer matches the tenant it was made against."""


class AlreadyApplied(Refused):
    """A saved plan was applied once already; a plan is good for one apply only."""


class PolicyDenied(Refused):
    """One or more `deny` policy rules failed; the message lists every one of them."""


class Cancelled(LwrError):
    """The user declined the confirmation prompt."""


class StateError(LwrError):
    """The state store (lock, journal, audit log) is unreadable, corrupt or from a newer lwr."""

"""ApplyStopped: the error an apply ends with when it stops before its last change.

At the apply layer, not in reconciler.errors, because it carries the executor's ApplyResult
(what was done before the stop) and errors depend on nothing above the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import LwrError

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult

__all__ = ["ApplyStopped"]


class ApplyStopped(LwrError):
    """An apply ended before its last change: `cause` says why, `result` what was done.

    Raised by the executor for a provider or store failure and for an interrupt (`signal`:
    the SIGINT or SIGTERM that asked it to stop between batches; None for a second Ctrl-C or
    an interrupt from elsewhere), and by the apply flow for manual steps left undone. Its
    message, exit code and prefix are the cause's.
    """

    def __init__(
        self, result: ApplyResult, cause: BaseException, signal: int | None = None
    ) -> None:
        super().__init__(str(cause))
        self.result = result
        self.cause = cause
        self.signal = signal
        if isinstance(cause, LwrError):
            self.exit_code, self.prefix = cause.exit_code, cause.prefix

    @property
    def interrupted(self) -> bool:
        """Whether a signal or Ctrl-C stopped it (rather than an error)."""
        return isinstance(self.cause, KeyboardInterrupt)

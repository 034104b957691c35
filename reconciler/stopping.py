"""Stopping an apply between batches: SIGINT and SIGTERM while the executor runs.

Owns the signal handlers the executor installs and the stop they turn into (ApplyStopped
carrying what was done), so a batch in flight is always journaled before the apply ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from reconciler.stopped import ApplyStopped

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopRequest:
    """While installed, SIGINT/SIGTERM ask to stop at the next batch boundary.

    A batch in flight then completes and is journaled before KeyboardInterrupt is raised; a
    second SIGINT raises at once. Only the main thread can install handlers; elsewhere
    signals act as usual and a kill is recovered by the next run.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        #: Set once the apply is on its way out: the journal and the lock are being settled,
        #: and another Ctrl-C must not cut that short (it would lose the stop's message).
        self.stopping = False
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> StopRequest:
        """Install the handlers; inside another request, join it instead: the outer one
        (reconciler.executing) spans telling how the apply stopped, which a restored
        default handler would let a second Ctrl-C cut short."""
        outer = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
        if isinstance(outer, StopRequest):
            return outer
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            self.stopping = True
            raise KeyboardInterrupt  # the second Ctrl-C: the user insists
        self.signum = signum

    def raise_if_requested(self, result: ApplyResult) -> None:
        """Raise ApplyStopped (with `result` and the signal) when a stop was asked for."""
        if self.signum is None:
            return
        self.stopping = True
        raise ApplyStopped(
            result,
            KeyboardInterrupt(
                f"apply stopped by {signal.Signals(self.signum).name} between batches "
                f"(run {result.run_id})"
            ),
            self.signum,
        )

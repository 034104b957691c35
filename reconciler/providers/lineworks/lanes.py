"""One batch's API calls side by side: a worker thread per API ("lane"), answers settled in order.

Each LINE WORKS API has its own budget (docs/lineworks.md, "Rate limits"), so the member
changes of two APIs of one phase (link-to-line and link-to-works) need not wait for each other;
within one API the limiter sets the pace, so one worker per API is all it can use. Workers
only send requests. Whatever writes (the attested state, the refusal memory, the outcome) runs
on the calling thread as answers arrive, so the store is never used from two threads and
every request that was answered is recorded before a batch returns, even when it stops.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reconciler.actions import Change
from reconciler.providers.base import BatchOutcome, BatchStopped, Refusal
from reconciler.providers.lineworks.client import NotSent

__all__ = ["Answer", "BatchRun", "Lanes"]


@dataclass(frozen=True)
class Answer:
    """A worker's result for one change: None when it took effect, else why not;
    `sent` False when the change was skipped because the batch was stopping."""

    change: Change
    error: Exception | None
    sent: bool = True


#: Sends one change's request(s); raises NotSent when `stop` was set before sending.
Send = Callable[[Change, threading.Event], None]


class Lanes:
    """Worker threads, one per lane, for one batch: `submit`, then `answers` until drained.

    `stop()` lets every worker finish the request it is sending and skip the rest (an error,
    Ctrl-C, or a refusal under --fail-fast: `halts` says which errors stop the batch, decided
    on the worker thread, so that its own next request is never sent): between requests,
    never inside one.
    """

    def __init__(self, send: Send, halts: Callable[[Exception], bool]) -> None:
        self._send, self._halts = send, halts
        self._queues: dict[str, queue.SimpleQueue[Change | None]] = {}
        self._threads: list[threading.Thread] = []
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending = 0

    @property
    def stopping(self) -> bool:
        """stop() was called."""
        return self._stop.is_set()

    def submit(self, lane: str, change: Change) -> None:
        """Queue `change` on its lane's worker (started on first use)."""
        if lane not in self._queues:
            self._queues[lane] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._work, args=(self._queues[lane],), name=f"lwr-{lane}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._pending += 1
        self._queues[lane].put(change)

    def stop(self) -> None:
        """Send nothing more; what is in flight still ends and is answered."""
        self._stop.set()

    def answers(self) -> Iterator[Answer]:
        """Wait for every submitted change's answer (in the order they come) and yield
        them; the caller settles each. Interruptible (Ctrl-C) between answers."""
        while self._pending:
            try:
                answer = self._answers.get(timeout=0.5)
            except queue.Empty:
                continue
            self._pending -= 1
            yield answer

    def close(self) -> None:
        """Stop the workers once their queues are done (no wait: they are daemons)."""
        for lane_queue in self._queues.values():
            lane_queue.put(None)

    def _work(self, lane_queue: queue.SimpleQueue[Change | None]) -> None:
        while (change := lane_queue.get()) is not None:
            if self._stop.is_set():
                self._answers.put(Answer(change, None, sent=False))
                continue
            try:
                self._send(change, self._stop)
            except NotSent:
                self._answers.put(Answer(change, None, sent=False))
            except Exception as exc:  # settled (and raised) by the calling thread
                if self._halts(exc):  # here, before any worker sends again
                    self._stop.set()
                self._answers.put(Answer(change, exc))
            else:
                self._answers.put(Answer(change, None))


class BatchRun:
    """What one apply_each has seen so far: applied, refused, the error it stopped on."""

    def __init__(self, actor: str, keep_going: bool) -> None:
        self.actor, self.keep_going = actor, keep_going
        self.applied: list[str] = []
        self.refused: list[Refusal] = []
        self.error: tuple[Change, Exception] | None = None

    def fail(self, change: Change, error: Exception, lanes: Lanes) -> None:
        """`change` failed (not a refusal): send nothing more; the first error counts."""
        lanes.stop()
        if self.error is None:
            self.error = (change, error)

    def outcome(self) -> BatchOutcome:
        """The batch's outcome; raises the error it stopped on (BatchStopped, naming the
        change, when part of the batch took effect)."""
        done = BatchOutcome(tuple(self.applied), tuple(self.refused))
        if self.error is None:
            return done
        change, error = self.error
        if self.applied or self.refused:
            raise BatchStopped(done, error, change.id) from error
        raise error

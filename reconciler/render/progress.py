"""How an apply shows its progress and what it could not do.

On a terminal, a rich bar (phase, count, rate, ETA); without one (CI, a pipe), a plain line
at each phase boundary and at least every `interval` seconds:

    applied 12,500/82,003 (15 %) · phase 4 add members · 1,250/s · ETA 56 s

An apply that ends early says how far it got in the same words; one that went on past
refusals ends with `failure_report`. The clock is injected, so the interval is tested
without waiting for it. No click here: lines go to an `emit` callable. What users see is
in docs/gitops.md#progress-and-partial-failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from reconciler.actions import Change
from reconciler.i18n import ENGLISH, Messages, say
from reconciler.manual import ManualStep
from reconciler.outcomes import ApplyProgress, ProgressCallback
from reconciler.render import checklist
from reconciler.words import duration

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult

__all__ = ["PlainProgress", "failure_report", "progress_bar", "progress_line"]

#: The longest a pipeline waits between two plain lines, in seconds.
INTERVAL = 10.0


def progress_line(event: ApplyProgress, elapsed: float | None = None, t: Messages = ENGLISH) -> str:
    """`applied 12,500/82,003 (15 %) · phase 4 add members · 1,250/s · ETA 56 s`, in `t`'s
    language.

    The count is what is in effect now (applied, or found so already); refused and skipped
    changes are counted apart. Rate and ETA need `elapsed` seconds since the first event.
    """
    settled = event.done - event.refused - event.skipped
    percent = settled * 100 // event.total if event.total else 100
    parts = [
        t._(
            "applied {settled:,}/{total:,} ({percent} %)",
            settled=settled,
            total=event.total,
            percent=percent,
        )
    ]
    if event.refused:
        parts.append(t._("{n:,} refused", n=event.refused))
    if event.skipped:
        parts.append(t._("{n:,} skipped", n=event.skipped))
    if event.phase is not None:
        parts.append(_phase(event, t))
    if elapsed and elapsed > 0 and event.done:
        rate = event.done / elapsed
        parts.append(f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s")
    eta = _eta(event, elapsed)
    if eta is not None and event.done < event.total:
        parts.append(t._("ETA {duration}", duration=duration(eta, t=t)))
    return " · ".join(parts)


def _phase(event: ApplyProgress, t: Messages) -> str:
    """`phase 4 add members`, or `applying` before a phase is known."""
    if event.phase is None:
        return t._("applying")
    return t._("phase {n} {title}", n=int(event.phase), title=t._(event.phase.title))


def _eta(event: ApplyProgress, elapsed: float | None) -> float | None:
    """The provider's model (the plan's estimate) when it has one, else the observed rate."""
    if event.eta is not None:
        return event.eta
    if elapsed and elapsed > 0 and event.done:
        return (event.total - event.done) * elapsed / event.done
    return None


class PlainProgress:
    """Plain progress lines for a pipeline: at the first event, at each phase boundary, at
    the end, and at least every `interval` seconds: on the next event, or, while a batch
    takes longer (a slow API, a rate-limit wait), from `heartbeat`'s thread calling `tick`."""

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
        prefix: str = "",
        messages: Messages = ENGLISH,
    ) -> None:
        self._emit, self._clock, self._interval, self._prefix = emit, clock, interval, prefix
        self._t = messages
        self._start: float | None = None
        self._last_at = 0.0
        self._last: ApplyProgress | None = None
        self._shown: ApplyProgress | None = None
        self._lock = threading.Lock()  # events come from the apply, ticks from the heartbeat

    def __call__(self, event: ApplyProgress) -> None:
        """One executor event: print it when a line is due."""
        with self._lock:
            self._event(event, self._clock())

    def tick(self) -> None:
        """No event for `interval` seconds: print the last state again (rate and ETA move)."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last_at >= self._interval:
                self._show(self._last, now)

    @contextmanager
    def heartbeat(self) -> Iterator[PlainProgress]:
        """While inside, a thread ticks a few times per interval; stopped on the way out."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self._interval / 4):
                self.tick()

        thread = threading.Thread(target=beat, name="lwr-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def _event(self, event: ApplyProgress, now: float) -> None:
        if self._start is None:
            self._start = now
        first = self._shown is None
        last = self._last
        boundary = last is not None and event.phase != last.phase
        if last is not None and boundary and last is not self._shown:
            self._show(last, now)  # the phase that ended, with its last count
        self._last = event
        if first or boundary or event.done >= event.total or now - self._last_at >= self._interval:
            self._show(event, now)

    def note(self, event: ApplyProgress) -> None:
        """Keep `event` as the last state without printing it (a bar shows it)."""
        with self._lock:
            if self._start is None:
                self._start = self._clock()
            self._last = self._shown = event

    def summary(self) -> str | None:
        """How far it got, in the same words (None before the first event)."""
        with self._lock:
            if self._last is None:
                return None
            return self._prefix + progress_line(self._last, self._elapsed(self._clock()), self._t)

    def close(self) -> None:
        """Print the last state if it was not printed yet."""
        with self._lock:
            if self._last is not None and self._last is not self._shown:
                self._show(self._last, self._clock())

    def _show(self, event: ApplyProgress, now: float) -> None:
        self._shown, self._last_at = event, now
        self._emit(self._prefix + progress_line(event, self._elapsed(now), self._t))

    def _elapsed(self, now: float) -> float | None:
        return None if self._start is None else now - self._start


@contextmanager
def progress_bar(stream: object, t: Messages = ENGLISH) -> Iterator[ProgressCallback]:
    """A rich progress bar on `stream` (a terminal): phase, count, percent, rate and ETA, in
    `t`'s language."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
    )

    console = Console(file=stream)  # type: ignore[arg-type]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(t._("applying"), total=None, rate="", eta="")
        started = time.monotonic()

        def update(event: ApplyProgress) -> None:
            phase = _phase(event, t)
            elapsed = time.monotonic() - started
            rate = f"{event.done / elapsed:,.0f}/s" if elapsed > 0 and event.done else ""
            eta = _eta(event, elapsed)
            left = ""
            if eta is not None and event.done < event.total:
                left = t._("ETA {duration}", duration=duration(eta, t=t))
            bar.update(
                task,
                completed=event.done,
                total=event.total,
                description=phase,
                rate=rate,
                eta=left,
            )

        yield update


def failure_report(
    result: ApplyResult, changes: Mapping[str, Change], t: Messages = ENGLISH
) -> str:
    """Every change the tenant refused or the executor skipped, why, and what to do, in
    `t`'s language (the tenant's own reasons as it gave them)."""
    lines = [
        t.n_(
            "Not applied: {n} change refused by the tenant, {skipped} skipped because they "
            "need a refused one; {applied} applied (run {run}).",
            "Not applied: {n} changes refused by the tenant, {skipped} skipped because they "
            "need a refused one; {applied} applied (run {run}).",
            len(result.refused),
            skipped=len(result.blocked),
            applied=len(result.applied),
            run=result.run_id,
        )
    ]
    manual = [changes[r.change_id] for r in result.refused if r.permanent]
    numbers = {c.id: n for n, c in enumerate(manual, 1)}
    for refusal in result.refused:
        lines.append(
            t._(
                "  refused  {change}: {reason}",
                change=refusal.change_id,
                reason=say(refusal.reason, t),
            )
        )
        change = changes.get(refusal.change_id)
        if refusal.permanent and change is not None:
            step = ManualStep(change, numbers[change.id], len(manual))
            where, value = checklist.path(step, t), checklist.value(step, t)
            lines.append(
                t._(
                    "    to do: a manual step now, in the console: {where}: {value}, then "
                    "press Save. The next plan lists it as a manual step (confirm it with "
                    "--manual=ask, or --manual=attested once done).",
                    where=where,
                    value=value,
                )
            )
        else:
            lines.append(
                t._(
                    "    to do: fix the cause, then run `lwr plan` and apply again (what was "
                    "applied is not repeated)."
                )
            )
    for blocked in result.blocked:
        reason = say(blocked.reason, t)
        lines.append(t._("  skipped  {change}: {reason}", change=blocked.change_id, reason=reason))
    if result.blocked:
        lines.append(
            t._("    to do: the next apply makes the skipped changes once what they need is made.")
        )
    return "\n".join(lines)

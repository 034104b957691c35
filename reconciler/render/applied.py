"""What an apply says at its end, in the reader's language: the changes it applied (or
recovered), and, when it stopped early, how far it got, why, and what to do next."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from reconciler.errors import StateError
from reconciler.i18n import ENGLISH, Messages

if TYPE_CHECKING:
    from reconciler.stopped import ApplyStopped
    from reconciler.workflow import Applied

__all__ = ["done_lines", "stopped_message"]


def done_lines(done: Applied, t: Messages = ENGLISH) -> list[str]:
    """The last lines of an apply that finished: applied, recovered, left for later."""
    result = done.result
    lines: list[str] = []
    if not done.planned.plan.changes:
        if result is not None and result.recovered:
            lines.append(
                t.n_(
                    "Recorded {n} change of the interrupted run {run} as recovered: they "
                    "were in effect already.",
                    "Recorded {n} changes of the interrupted run {run} as recovered: they "
                    "were in effect already.",
                    len(result.recovered),
                    run=result.run_id,
                )
            )
        return lines
    assert result is not None  # the executor ran
    if result.recovered:
        complete = t.n_(
            "Apply complete: {n} change applied, {recovered} recovered from an interrupted "
            "run (run {run}).",
            "Apply complete: {n} changes applied, {recovered} recovered from an interrupted "
            "run (run {run}).",
            len(result.applied),
            recovered=len(result.recovered),
            run=result.run_id,
        )
    else:
        complete = t.n_(
            "Apply complete: {n} change applied (run {run}).",
            "Apply complete: {n} changes applied (run {run}).",
            len(result.applied),
            run=result.run_id,
        )
    lines.append(complete)
    if done.held:
        lines.append(
            t.n_(
                "Left for the next plan: {n} change, manual steps and what depends on them "
                "(tighten before loosen).",
                "Left for the next plan: {n} changes, manual steps and what depends on them "
                "(tighten before loosen).",
                len(done.held),
            )
        )
    return lines


def stopped_message(stop: ApplyStopped, total: int, t: Messages = ENGLISH) -> str:
    """How far an apply that ended early got, why it ended, and what to do next."""
    partial = stop.result
    done = t.n_(
        "{applied} of {n} change applied (run {run})",
        "{applied} of {n} changes applied (run {run})",
        total,
        applied=len(partial.applied),
        run=partial.run_id,
    )
    if stop.interrupted:
        if stop.signal is not None:  # asked to stop: the batch in flight finished first
            return t._(
                "Apply stopped by {signal} between batches: {done}. The journal is consistent "
                "and the lock is released: run apply again to finish the rest.",
                signal=signal.Signals(stop.signal).name,
                done=done,
            )
        return t._(
            "Apply interrupted: {done}. The lock is released; run apply again: it checks "
            "the batch that was in flight against the tenant and finishes the rest.",
            done=done,
        )
    if isinstance(stop.cause, StateError):
        return t._(
            "Apply stopped because the state store failed: {done}. The batch in flight "
            "may have reached the tenant without being journaled: once the store is "
            "reachable, run apply again; it checks that batch against the tenant and "
            "finishes the rest.",
            done=done,
        )
    if partial.failed:
        return t._(
            "Apply stopped: {done}; stopped at {failed}. The journal is consistent: fix the "
            "cause and run apply again to finish.",
            done=done,
            failed=partial.failed,
        )
    return t._(
        "Apply stopped: {done}. The journal is consistent: fix the cause and run apply "
        "again to finish.",
        done=done,
    )

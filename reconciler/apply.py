"""The apply executor: runs a plan's changes on a provider under the tenant lock, journaled.

Owns batching, the write-ahead journal protocol, recovery of interrupted runs and audit rows.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from reconciler.actions import Change
from reconciler.console import changes_nothing
from reconciler.errors import StateError
from reconciler.model import TenantState
from reconciler.providers.base import Provider
from reconciler.stopped import ApplyStopped
from reconciler.store.base import (
    AuditRecord,
    AuditResult,
    EntryOutcome,
    LockHolder,
    RunRecord,
    StateStore,
)
from reconciler.store.base import (
    default_actor as default_actor,  # where callers have always found it
)

ProgressCallback = Callable[[int, int], None]

#: Journal error of a change found not in effect after its run was interrupted.
NOT_APPLIED = "interrupted before it took effect; not applied"


@dataclass
class ApplyResult:
    """What one execute() did, by change id, in order.

    `recovered`: changes of an interrupted earlier run found in effect and recorded now.
    `skipped`: changes of this run already in effect (done by an earlier run), not repeated.
    `failed`/`error`: the change the provider refused (the one its error names, else the
    first of the failed batch; the whole batch is journaled failed), and why.
    `took_over`: the stale lock (its process dead) this run took over, if any.
    """

    run_id: str
    applied: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    skipped: list[str] = field(default_factory=list)
    took_over: LockHolder | None = None


def change_holds(change: Change, state: TenantState) -> bool:
    """Whether the tenant already has what `change` sets: applying it would change nothing
    (the console model's answer, so recovery agrees with every provider's apply)."""
    return changes_nothing(state, change)


def batches(changes: Sequence[Change], size: int) -> Iterator[list[Change]]:
    """Consecutive changes, at most `size` per batch, never two phases in one batch."""
    size = max(1, size)
    batch: list[Change] = []
    for change in changes:
        if batch and (len(batch) >= size or change.phase != batch[0].phase):
            yield batch
            batch = []
        batch.append(change)
    if batch:
        yield batch


def execute(
    changes: Sequence[Change],
    provider: Provider,
    store: StateStore,
    *,
    actor: str,
    plan_digest: str,
    domain: str,
    on_progress: ProgressCallback | None = None,
    precheck: Callable[[], None] | None = None,
) -> ApplyResult:
    """Apply `changes` in order under the tenant lock; journal, audit, and recover crashes.

    Raises LockHeld when another apply holds the tenant. A provider error is recorded
    (journal failed, audit failed, run failed); no later change runs. SIGINT or SIGTERM
    stops at the next batch boundary. Either way ApplyStopped is raised, carrying what was
    done and the cause (the provider's error, a KeyboardInterrupt). The lock is released
    in every case.
    `precheck` runs once the lock is held and before anything is written: the place to
    refuse a plan whose tenant changed between planning and locking.
    """
    ids = [change.id for change in changes]
    if len(set(ids)) != len(ids):
        raise ValueError("change ids must be unique within a plan (the journal is keyed by them)")
    with _StopRequest() as stop:
        with store.lock(provider.key, "apply") as holder:
            if precheck is not None:
                precheck()
            state, recovered = _recover_runs(provider, store, domain)
            run = store.begin_run(provider.key, plan_digest, actor)
            result = ApplyResult(run.run_id, recovered=recovered, took_over=holder.replaced)
            _Run(provider, store, run, domain, result, stop).execute(changes, state, on_progress)
        stop.raise_if_requested(result)  # a signal after the last batch: done, then stop
    return result


def recover_interrupted(provider: Provider, store: StateStore, domain: str) -> ApplyResult | None:
    """Recover what a killed run left in doubt, applying nothing (for a plan with no changes).

    A run killed after its last tenant write leaves nothing to plan, yet its journal says
    `started`, its run `running`, and the dead process's lock row remains: record those
    changes (audited `recovered`) and release the lock now rather than at the next apply
    that has changes. Returns None when nothing was left unsettled; raises LockHeld when a
    live apply holds the tenant. `run_id` of the result is the latest run's.
    """
    key = provider.key
    last = store.last_run(key)
    unsettled = (
        bool(store.runs(key, status="running"))
        or (last is not None and last.status == "failed")
        or any(holder.tenant_key == key for holder in store.list_locks())
    )
    if not unsettled:
        return None
    with store.lock(key, "apply") as holder:
        _, recovered = _recover_runs(provider, store, domain)
    return ApplyResult(last.run_id if last else "", recovered=recovered, took_over=holder.replaced)


def _recover_runs(
    provider: Provider, store: StateStore, domain: str
) -> tuple[TenantState | None, list[str]]:
    """Recover what an earlier run of this tenant left unsettled; one tenant read at most.

    Unsettled: entries `started` but never settled (a crash or kill mid-batch) of any run
    still `running` or of the latest run, and the `failed` entries of the latest run (an API
    may have applied part of a failed batch). Each found in effect is recorded done and
    audited `recovered`, never applied again; a started one not in effect is marked failed.
    Returns the tenant state read (None when nothing needed it) and the recovered ids.
    """
    pending = store.runs(provider.key, status="running")
    last = store.last_run(provider.key)
    if last is not None and last.status in ("failed", "interrupted"):
        pending.append(last)
    if not pending:
        return None, []
    state = provider.read()
    recovered: list[str] = []
    for run in pending:
        recovered += _recover_run(run, state, store, domain)
        if run.status == "running":
            store.finish_run(run.run_id, "interrupted")
    return state, recovered


def _recover_run(run: RunRecord, state: TenantState, store: StateStore, domain: str) -> list[str]:
    """Decide one earlier run's unsettled entries against `state`; return the recovered ids."""
    outcomes: list[EntryOutcome] = []
    audit: list[AuditRecord] = []
    recovered: list[str] = []
    for entry in store.entries(run.run_id):
        if entry.state == "done":
            continue
        if change_holds(entry.change, state):
            outcomes.append(EntryOutcome(entry.change_id, "done"))
            result: AuditResult = "recovered"
            recovered.append(entry.change_id)
        elif entry.state == "started":
            outcomes.append(EntryOutcome(entry.change_id, "failed", NOT_APPLIED))
            result = "failed"
        else:
            continue  # failed and still not in effect: its failure is on record already
        error = None if result == "recovered" else NOT_APPLIED
        # The change is the earlier run's doing: filed under that run and its actor.
        audit.append(
            AuditRecord.of(
                entry.change,
                tenant_key=run.tenant_key,
                domain=domain,
                run_id=run.run_id,
                actor=run.actor,
                result=result,
                error=error,
            )
        )
    if outcomes:
        store.complete(run.run_id, outcomes, audit)
    return recovered


class _Run:
    """One run's batches: journal started → provider.apply → journal done + audit."""

    def __init__(
        self,
        provider: Provider,
        store: StateStore,
        run: RunRecord,
        domain: str,
        result: ApplyResult,
        stop: _StopRequest,
    ) -> None:
        self.provider, self.store, self.run = provider, store, run
        self.domain, self.result, self.stop = domain, result, stop

    def execute(
        self,
        changes: Sequence[Change],
        state: TenantState | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        """Run every batch; finish the run done, failed or interrupted (and re-raise)."""
        total, done = len(changes), 0
        recovered = set(self.result.recovered)
        try:
            if on_progress and total:
                on_progress(0, total)
            for batch in batches(changes, self.provider.batch_size):
                self.stop.raise_if_requested(self.result)
                # Only after an unsettled run (state read for recovery): skip what is in
                # effect already, so a re-run never repeats done work.
                todo = batch if state is None else self._not_in_effect(batch, state, recovered)
                if todo:
                    self._apply(todo)
                done += len(batch)
                if on_progress:
                    on_progress(done, total)
        except ApplyStopped:
            self._mark_interrupted()  # a stop asked for between batches
            raise
        except (Exception, KeyboardInterrupt) as exc:
            self.stop.stopping = True
            if self.result.failed is None:
                self._mark_interrupted()
            raise ApplyStopped(self.result, exc) from exc
        except BaseException:
            self.stop.stopping = True
            self._mark_interrupted()
            raise
        self.store.finish_run(self.run.run_id, "done")

    def _not_in_effect(
        self, batch: list[Change], state: TenantState, recovered: set[str]
    ) -> list[Change]:
        todo = []
        for change in batch:
            if not change_holds(change, state):
                todo.append(change)
            elif change.id not in recovered:
                self.result.skipped.append(change.id)
        return todo

    def _apply(self, batch: list[Change]) -> None:
        run_id = self.run.run_id
        self.store.mark_started(run_id, batch)  # committed: the tenant is touched after this
        try:
            self.provider.apply(batch)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            self.result.failed, self.result.error = _culprit(exc, batch), error
            self.store.complete(
                run_id,
                [EntryOutcome(c.id, "failed", error) for c in batch],
                self._audit(batch, "failed", error),
            )
            self.store.finish_run(run_id, "failed")
            raise
        self.store.complete(
            run_id, [EntryOutcome(c.id, "done") for c in batch], self._audit(batch, "applied")
        )
        self.result.applied.extend(c.id for c in batch)

    def _audit(
        self, batch: list[Change], result: AuditResult, error: str | None = None
    ) -> list[AuditRecord]:
        """Audit rows for a batch; a manual step that took effect was done by an admin in
        the console, so it is `attested`, never `applied` by lwr."""

        def result_of(change: Change) -> AuditResult:
            return "attested" if result == "applied" and change.execution == "manual" else result

        return [
            AuditRecord.of(
                change,
                tenant_key=self.run.tenant_key,
                domain=self.domain,
                run_id=self.run.run_id,
                actor=self.run.actor,
                result=result_of(change),
                error=error,
            )
            for change in batch
        ]

    def _mark_interrupted(self) -> None:
        """Best effort: when the store itself failed, the run stays `running` and the next
        execute() recovers it like a crash; the original exception must not be masked."""
        with suppress(StateError):
            self.store.finish_run(self.run.run_id, "interrupted")


def _culprit(exc: Exception, batch: list[Change]) -> str:
    """The change a provider error names (ChangeRefused.change_id), else the batch's first."""
    named = getattr(exc, "change_id", None)
    return named if named in {c.id for c in batch} else batch[0].id


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _StopRequest:
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

    def __enter__(self) -> _StopRequest:
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

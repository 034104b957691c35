"""The apply executor: runs a plan's changes on a provider under the tenant lock, journaled.

Owns batching, the write-ahead journal protocol, recovery of interrupted runs and audit rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from reconciler.actions import Change
from reconciler.batching import batches as batches  # where callers have always found it
from reconciler.console import changes_nothing
from reconciler.errors import ChangesRefused, StateError
from reconciler.i18n import Said
from reconciler.model import TenantState
from reconciler.outcomes import ApplyProgress, Blocked, Blocker, Eta
from reconciler.outcomes import ProgressCallback as ProgressCallback
from reconciler.providers.base import BatchOutcome, BatchStopped, Provider, Refusal
from reconciler.stopped import ApplyStopped
from reconciler.stopping import StopRequest
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

#: Journal error of a change found not in effect after its run was interrupted.
NOT_APPLIED = "interrupted before it took effect; not applied"
#: Journal error of a change of a batch that stopped before reaching it.
NOT_ATTEMPTED = "not attempted: the batch stopped before it"


@dataclass
class ApplyResult:
    """What one execute() did, by change id, in order.

    `recovered`: changes of an interrupted earlier run found in effect and recorded now.
    `skipped`: changes of this run already in effect (done by an earlier run), not repeated.
    `failed`/`error`: the change the apply stopped at (the one a provider error names, else
    the first of the failed batch; a batch that failed as a whole is journaled failed), and why.
    `refused`: changes the tenant refused (nothing of them took effect); `blocked`: changes
    not sent because they need a refused one (docs/reliability.md#partial-failure).
    `took_over`: the stale lock (its process dead) this run took over, if any.
    `progress`: the last progress event (how far it got).
    """

    run_id: str
    applied: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    skipped: list[str] = field(default_factory=list)
    took_over: LockHolder | None = None
    refused: list[Refusal] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    progress: ApplyProgress | None = None


def change_holds(change: Change, state: TenantState) -> bool:
    """Whether the tenant already has what `change` sets: applying it would change nothing
    (the console model's answer, so recovery agrees with every provider's apply)."""
    return changes_nothing(state, change)


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
    fail_fast: bool = False,
) -> ApplyResult:
    """Apply `changes` in order under the tenant lock; journal, audit, and recover crashes.

    Raises LockHeld when another apply holds the tenant. A change the tenant refuses is
    recorded (journal failed, audit failed) and only what depends on it is skipped: the
    result lists both and the run ends `failed`; with `fail_fast` the first refusal stops
    the apply (ApplyStopped caused by ChangesRefused). Any other provider error is recorded
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
    with StopRequest() as stop:
        with store.lock(provider.key, "apply") as holder:
            if precheck is not None:
                precheck()
            state, recovered = _recover_runs(provider, store, domain)
            run = store.begin_run(provider.key, plan_digest, actor)
            result = ApplyResult(run.run_id, recovered=recovered, took_over=holder.replaced)
            _Run(provider, store, run, domain, result, stop, fail_fast).execute(
                changes, state, on_progress
            )
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
    """One run's batches: journal started → provider.apply_each → journal settled + audit."""

    def __init__(
        self,
        provider: Provider,
        store: StateStore,
        run: RunRecord,
        domain: str,
        result: ApplyResult,
        stop: StopRequest,
        fail_fast: bool = False,
    ) -> None:
        self.provider, self.store, self.run = provider, store, run
        self.domain, self.result, self.stop = domain, result, stop
        self.fail_fast, self.blocker = fail_fast, Blocker()
        #: Changes dealt with so far: applied, in effect already, refused or skipped (not
        #: those a stopped batch never attempted), for the progress events.
        self.dealt = 0

    def execute(
        self,
        changes: Sequence[Change],
        state: TenantState | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        """Run every batch; finish the run done, failed or interrupted (and re-raise)."""
        total = len(changes)
        self.eta = Eta(changes, self.provider.estimate)
        recovered = set(self.result.recovered)
        at = changes[0] if changes else None
        try:
            if at is not None:
                self._progress(on_progress, at, total)
            for batch in batches(changes, self.provider.batch_size, self.provider.lane):
                self.stop.raise_if_requested(self.result)
                at = batch[0]
                # Only after an unsettled run (state read for recovery): skip what is in
                # effect already, so a re-run never repeats done work.
                todo = batch if state is None else self._not_in_effect(batch, state, recovered)
                self.dealt += len(batch) - len(todo)
                todo = self._unblocked(todo)
                if todo:
                    self._apply(todo)
                self._progress(on_progress, at, total)
                if self.fail_fast and self.result.refused:
                    self._stop_at_refusal()
        except ApplyStopped:
            self._mark_interrupted()  # a stop asked for between batches
            raise
        except (Exception, KeyboardInterrupt) as exc:
            self.stop.stopping = True
            if self.result.failed is None:
                self._mark_interrupted()
            if at is not None:  # how far it got, the batch it stopped in included
                with suppress(Exception):
                    self._progress(on_progress, at, total)
            raise ApplyStopped(self.result, exc) from exc
        except BaseException:
            self.stop.stopping = True
            self._mark_interrupted()
            raise
        self.store.finish_run(
            self.run.run_id, "failed" if self.result.refused or self.result.blocked else "done"
        )

    def _progress(self, on_progress: ProgressCallback | None, at: Change, total: int) -> None:
        r = self.result
        self.result.progress = event = ApplyProgress(
            at.phase,
            self.dealt,
            total,
            len(r.applied),
            len(r.refused),
            len(r.blocked),
            self.eta.left(self.dealt),
        )
        if on_progress is not None:
            on_progress(event)

    def _unblocked(self, batch: list[Change]) -> list[Change]:
        todo = []
        for change in batch:
            blocked = self.blocker.check(change)
            if blocked is None:
                todo.append(change)
            else:
                self.result.blocked.append(blocked)
                self.dealt += 1
        return todo

    def _stop_at_refusal(self) -> None:
        first = self.result.refused[0]
        self.result.failed, self.result.error = first.change_id, first.reason
        self.store.finish_run(self.run.run_id, "failed")
        raise ChangesRefused(
            Said.of(
                "change {change} refused: {reason}; stopped there (--fail-fast)",
                change=first.change_id,
                reason=first.reason,
            )
        )

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
            outcome = self.provider.apply_each(batch, keep_going=not self.fail_fast)
        except BatchStopped as stopped:  # part of the batch took effect: record just that
            self._settle(batch, stopped.done, stopped)
            raise stopped.cause from stopped
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
        self._settle(batch, outcome)

    def _settle(
        self, batch: list[Change], outcome: BatchOutcome, stopped: BatchStopped | None = None
    ) -> None:
        """Journal and audit each change as it ended: applied, refused (with the tenant's
        reason), the one a stopped batch failed on, or not attempted (journaled only)."""
        applied, refused = set(outcome.applied), {r.change_id: r for r in outcome.refused}
        entries: list[EntryOutcome] = []
        audit: list[AuditRecord] = []
        culprit: Change | None = None
        for change in batch:
            if change.id in applied:
                entries.append(EntryOutcome(change.id, "done"))
                audit.append(self._record(change, "applied"))
                self.result.applied.append(change.id)
            elif change.id in refused:
                reason = refused[change.id].reason
                entries.append(EntryOutcome(change.id, "failed", reason))
                audit.append(self._record(change, "failed", reason))
                self.result.refused.append(refused[change.id])
                self.blocker.refused(change)
            elif stopped is not None and culprit is None and stopped.change_id in (None, change.id):
                culprit = change
                entries.append(EntryOutcome(change.id, "failed", str(stopped)))
                audit.append(self._record(change, "failed", str(stopped)))
            else:
                entries.append(EntryOutcome(change.id, "failed", NOT_ATTEMPTED))
        self.store.complete(self.run.run_id, entries, audit)
        self.dealt += len(applied) + len(refused)
        if stopped is not None:
            self.result.failed = culprit.id if culprit else batch[-1].id
            self.result.error = str(stopped)
            self.store.finish_run(self.run.run_id, "failed")

    def _audit(
        self, batch: list[Change], result: AuditResult, error: str | None = None
    ) -> list[AuditRecord]:
        """Audit rows for a batch that ended alike."""
        return [self._record(change, result, error) for change in batch]

    def _record(self, change: Change, result: AuditResult, error: str | None = None) -> AuditRecord:
        """The audit row of one change; a manual step that took effect was done by an admin
        in the console, so it is `attested`, never `applied` by lwr."""
        if result == "applied" and change.execution == "manual":
            result = "attested"
        run = self.run
        return AuditRecord.of(
            change,
            tenant_key=run.tenant_key,
            domain=self.domain,
            run_id=run.run_id,
            actor=run.actor,
            result=result,
            error=error,
        )

    def _mark_interrupted(self) -> None:
        """Best effort: when the store itself failed, the run stays `running` and the next
        execute() recovers it like a crash; the original exception must not be masked."""
        with suppress(StateError):
            self.store.finish_run(self.run.run_id, "interrupted")


def _culprit(exc: Exception, batch: list[Change]) -> str:
    """The change a provider error names (ChangeRefused.change_id), else the batch's first."""
    named = getattr(exc, "change_id", None)
    return named if named in {c.id for c in batch} else batch[0].id

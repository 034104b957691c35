"""Manual steps: changes a tenant has no public API for, done by an admin in the console.

Owns the steps of a plan (numbered, in apply order) and the apply modes (ask, attested,
skip, stop); how a step reads (console path, exact value) is reconciler.render.checklist.
A provider takes part by declaring `Provider.ATTESTED`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from reconciler.actions import Change
from reconciler.errors import Refused
from reconciler.i18n import N_, Msg, Said
from reconciler.model import DesiredState
from reconciler.providers.base import ConfirmChange, Provider
from reconciler.words import plural

if TYPE_CHECKING:
    from reconciler.plan import Plan

__all__ = [
    "ConfirmChange",
    "ManualMode",
    "ManualRun",
    "ManualStep",
    "ManualStepHandler",
    "ManualStepsPending",
    "annotate",
    "label",
    "split",
    "steps",
]

ManualMode = Literal["ask", "attested", "skip", "stop"]


@dataclass(frozen=True)
class ManualStep:
    """One checklist item: a manual change and its place in the list (render.checklist
    words it: where to click and exactly what to set)."""

    change: Change
    number: int  # 1-based, in apply order
    total: int


def steps(changes: Sequence[Change]) -> list[ManualStep]:
    """The manual changes of a plan as numbered checklist items, in apply order."""
    manual = [c for c in changes if c.execution == "manual"]
    return [ManualStep(c, n, len(manual)) for n, c in enumerate(manual, 1)]


#: Asked for each manual step while apply runs; True when the admin has done it.
#: Raise (e.g. ManualStepsPending) to stop the apply at that step.
ManualStepHandler = Callable[[ManualStep], bool]


class ManualStepsPending(Refused):
    """Apply stopped before manual steps nobody confirmed (exit 3); the journal is consistent.

    Carries the steps (`pending`) and why (`reason`); reconciler.render.checklist words the
    refusal with their checklist, which is what the CLI shows.
    """

    def __init__(self, pending: Sequence[Change], reason: str) -> None:
        self.pending = tuple(pending)
        self.reason = reason
        super().__init__(
            f"refused: {reason}; {plural(len(self.pending), 'manual step')} not done: do them "
            "in the console, then run apply again with --manual=attested (or --manual=skip to "
            "leave them, and what depends on them, for later)"
        )


@dataclass(frozen=True)
class ManualSplit:
    """How one apply treats its manual steps: which changes run now, which wait."""

    run: tuple[Change, ...]
    held: tuple[Change, ...]  # not run in this apply (skip or stop)


def split(changes: Sequence[Change], mode: ManualMode) -> ManualSplit:
    """Divide a plan's changes for `mode`; order is kept.

    stop: everything before the first manual step runs, the rest waits ("stops before them").
    skip: manual steps wait, and so does every change that depends on one: running a later
    phase without its tightening step would open a looser moment than either state.
    ask, attested: everything runs; manual steps go through the handler.
    """
    if mode in ("ask", "attested"):
        return ManualSplit(tuple(changes), ())
    if mode == "stop":
        first = next((i for i, c in enumerate(changes) if c.execution == "manual"), None)
        if first is None:
            return ManualSplit(tuple(changes), ())
        return ManualSplit(tuple(changes[:first]), tuple(changes[first:]))
    held_ids: set[str] = set()
    run: list[Change] = []
    held: list[Change] = []
    for change in changes:
        if change.execution == "manual" or held_ids.intersection(change.depends_on):
            held_ids.add(change.id)
            held.append(change)
        else:
            run.append(change)
    return ManualSplit(tuple(run), tuple(held))


def attest_all(step: ManualStep) -> bool:
    """`--manual=attested`: the admin states every manual step is done already."""
    return True


def numbered(handler: ManualStepHandler | None, changes: Sequence[Change]) -> ConfirmChange:
    """Adapt a step handler to a provider: each change is shown with its checklist number;
    a step not confirmed (or with nobody to ask) stops the apply with ManualStepsPending."""
    by_id = {step.change.id: step for step in steps(changes)}

    def confirm(change: Change) -> bool:
        if handler is None:
            raise ManualStepsPending(
                [change], Said.of("nobody can confirm manual steps in this apply")
            )
        if not handler(by_id.get(change.id) or ManualStep(change, 1, 1)):
            raise ManualStepsPending([change], Said.of("the admin did not confirm the manual step"))
        return True

    return confirm


def label(source: str) -> str:
    """How a value's origin reads next to it in `show` and plans (English; a message id)."""
    return {
        "attested": N_("attested, not read"),
        "applied": N_("applied by lwr, not read"),
        "unknown": N_("unknown: never read nor attested"),
    }.get(source, "")


class ManualRun:
    """One apply's manual steps: which changes run, who confirms, and the stop at the end.

    The executor stays unaware of manual steps: held changes are left out of its list (so
    the journal never records a step nobody did) and the provider asks the handler.
    """

    def __init__(
        self,
        changes: Sequence[Change],
        provider: Provider,
        mode: ManualMode,
        handler: ManualStepHandler | None = None,
    ) -> None:
        self.mode = mode
        self.split = split(changes, mode)
        self._provider = provider if provider.ATTESTED else None
        if self._provider is not None:
            confirm = attest_all if mode == "attested" else handler if mode == "ask" else None
            self._provider.set_manual_handler(numbered(confirm, changes))

    @property
    def changes(self) -> tuple[Change, ...]:
        """What the executor runs now."""
        return self.split.run

    def finish(self) -> None:
        """Uninstall the handler; in stop mode, refuse (exit 3) over the steps left undone."""
        self.release()
        if self.mode == "stop" and self.split.held:
            raise ManualStepsPending(
                self.split.held, Said.of("a non-interactive apply stops before manual steps")
            )

    def release(self) -> None:
        """Uninstall the handler (also when the apply stopped early)."""
        if self._provider is not None:
            self._provider.set_manual_handler(None)


def annotate(plan: Plan, desired: DesiredState, provider: Provider) -> Plan:
    """Add what the provider says a reviewer must know (values not read, API time), and
    make manual steps of the changes it refused for good before (Provider.execution_of)."""
    changes = tuple(
        c if (how := provider.execution_of(c)) == c.execution else replace(c, execution=how)
        for c in plan.changes
    )
    moved = sum(a is not b for a, b in zip(changes, plan.changes, strict=True))
    notes = provider.plan_notes(desired, changes)
    if moved:
        notes += (
            Said(
                Msg.counted(
                    "{n} change the tenant refused for good in an earlier apply (its API "
                    "cannot make them) are manual steps now: an admin makes them in the console",
                    "{n} changes the tenant refused for good in an earlier apply (its API "
                    "cannot make them) are manual steps now: an admin makes them in the console",
                    moved,
                )
            ),
        )
    if not notes:
        return plan
    return replace(plan, changes=changes, warnings=plan.warnings + notes)

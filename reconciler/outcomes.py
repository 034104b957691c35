"""What an apply reports while it runs and when it ends: progress events, and which changes
the tenant refused or the executor skipped because they depend on a refused one.

Owns the rule of a partial apply (docs/reliability.md#partial-failure): a refused change
blocks what depends on it (the plan's `depends_on`), and a refused tighten (phase 2 or 3)
blocks every later add and loosen (phases 4 and 6), which would otherwise open a moment
looser than both the old and the new state. Everything else goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.actions import Change, Phase
from reconciler.errors import ChangesRefused
from reconciler.i18n import Msg, Said

if TYPE_CHECKING:
    from reconciler.apply import ApplyResult

__all__ = ["ApplyProgress", "Blocked", "Blocker", "Eta", "ProgressCallback", "refusals"]


@dataclass(frozen=True)
class ApplyProgress:
    """One progress event of the executor, sent after each batch (and once before the first).

    `done`: changes of the plan dealt with so far (applied, in effect already, refused or
    skipped), out of `total`; `phase`: the phase of the batch just dealt with (of the first
    batch for the opening event; None for an empty plan).
    """

    phase: Phase | None
    done: int
    total: int
    applied: int = 0
    refused: int = 0
    skipped: int = 0
    #: Seconds left by the provider's model (Provider.estimate, the plan's estimate), None
    #: when it has none: the ETA then follows the observed rate.
    eta: float | None = None


ProgressCallback = Callable[[ApplyProgress], None]


class Eta:
    """Seconds left of an apply by its provider's model: each phase's estimate (the plan's
    note: per phase its slowest API), the current phase in proportion to what is left of it."""

    def __init__(
        self, changes: Sequence[Change], estimate: Callable[[Sequence[Change]], float | None]
    ) -> None:
        groups: dict[Phase, list[Change]] = {}
        for change in changes:
            groups.setdefault(change.phase, []).append(change)
        #: (first change's index, changes, seconds) per phase, in plan order.
        self._phases: list[tuple[int, int, float]] | None = []
        start = 0
        for group in groups.values():
            seconds = estimate(group)
            if seconds is None:
                self._phases = None
                return
            self._phases.append((start, len(group), seconds))
            start += len(group)

    def left(self, done: int) -> float | None:
        """Seconds left once `done` changes (in plan order) are dealt with; None: no model."""
        if self._phases is None:
            return None
        return sum(
            seconds * min(1.0, max(0.0, (start + size - done) / size))
            for start, size, seconds in self._phases
        )


@dataclass(frozen=True)
class Blocked:
    """A change the executor did not send because a refused change it needs was not made."""

    change_id: str
    #: The refused change at the root (a skipped change blocks what depends on it too).
    waits_for: str
    #: Why, in a sentence: `depends on …`, or the tighten-before-loosen rule (a Said: the
    #: journal and JSON keep the English, the report says it in its reader's language).
    reason: str


#: A refused change of these phases blocks every later change of the phases below.
_TIGHTEN = frozenset({Phase.TIGHTEN, Phase.REMOVE})
_LOOSEN = frozenset({Phase.ADD, Phase.LOOSEN})


class Blocker:
    """Which changes of a run must wait for a refused one: the plan's `depends_on`, and
    tighten before loosen."""

    def __init__(self) -> None:
        #: Refused or blocked change id → the refused change at the root.
        self._root: dict[str, str] = {}
        self._tighten: str | None = None  # the first refused (or blocked) tighten's root

    def refused(self, change: Change) -> None:
        """`change` was refused: what needs it waits."""
        self._fail(change, change.id)

    def check(self, change: Change) -> Blocked | None:
        """Blocked (and recorded as failed, for what needs it in turn), or None to send it."""
        for need in change.depends_on:
            root = self._root.get(need)
            if root is not None:
                why = Msg.of(
                    "depends on {need}, which was not made ({root} refused)", need=need, root=root
                )
                blocked = Blocked(change.id, root, Said(why))
                self._fail(change, root)
                return blocked
        if self._tighten is not None and change.phase in _LOOSEN:
            root = self._tighten
            self._fail(change, root)
            why = Msg.of(
                "the tighten {root} was refused; adding or loosening before it is made "
                "would open a moment looser than both the old and the new state",
                root=root,
            )
            return Blocked(change.id, root, Said(why))
        return None

    def _fail(self, change: Change, root: str) -> None:
        self._root[change.id] = root
        if change.phase in _TIGHTEN and self._tighten is None:
            self._tighten = root


def refusals(result: ApplyResult) -> ChangesRefused:
    """The error an apply that went on past refusals ends with (exit 1); the UI prints the
    report of each change (reconciler.render.progress.failure_report)."""
    first = result.refused[0] if result.refused else None
    counts = {
        "skipped": len(result.blocked),
        "applied": len(result.applied),
        "run": result.run_id,
    }
    if first is None:
        msg = Msg.counted(
            "{n} change refused by the tenant; {skipped} skipped because they need a "
            "refused one; {applied} applied (run {run})",
            "{n} changes refused by the tenant; {skipped} skipped because they need a "
            "refused one; {applied} applied (run {run})",
            0,
            **counts,
        )
    else:
        msg = Msg.counted(
            "{n} change refused by the tenant, first {change}: {reason}; {skipped} skipped "
            "because they need a refused one; {applied} applied (run {run})",
            "{n} changes refused by the tenant, first {change}: {reason}; {skipped} skipped "
            "because they need a refused one; {applied} applied (run {run})",
            len(result.refused),
            change=first.change_id,
            reason=first.reason,
            **counts,
        )
    return ChangesRefused(Said(msg))

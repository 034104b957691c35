"""How the executor cuts a plan into batches (one journal transaction each).

Never two phases in one batch, so a phase ends before the next begins and no change of a
batch depends on another (docs/contract.md#order); a provider whose changes fall into
independent lanes (one per rate-limited API) gets up to batch_size of each lane per batch,
to run side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from reconciler.actions import Change

__all__ = ["batches"]


def batches(
    changes: Sequence[Change], size: int, lane: Callable[[Change], str | None] | None = None
) -> Iterator[list[Change]]:
    """At most `size` changes per batch, never two phases in one batch, in order.

    With `lane` (Provider.lane: queues a provider may run side by side, one per API), a
    batch holds up to `size` changes of each lane of its phase, so that the lanes can run
    concurrently; each lane's changes still come in plan order.
    """
    size = max(1, size)
    for phase in _phases(changes):
        lanes: dict[str | None, list[Change]] = {}
        for change in phase:
            lanes.setdefault(lane(change) if lane else None, []).append(change)
        order = {change.id: n for n, change in enumerate(phase)}
        for start in range(0, max(len(q) for q in lanes.values()), size):
            batch = [c for q in lanes.values() for c in q[start : start + size]]
            yield sorted(batch, key=lambda c: order[c.id]) if len(lanes) > 1 else batch


def _phases(changes: Sequence[Change]) -> Iterator[list[Change]]:
    run: list[Change] = []
    current = None
    for change in changes:
        phase = change.phase  # a property: read once per change
        if run and phase != current:
            yield run
            run = []
        current = phase
        run.append(change)
    if run:
        yield run

"""Waiting for a held tenant lock (`--lock-timeout`): the store's acquire, tried again.

The store (reconciler.store) takes a tenant's lock or refuses at once (LockHeld). A CI job
started while another apply runs should rather wait its turn, as Terraform's -lock-timeout
does: `LockWait` retries the store's own acquire with backoff until a deadline, telling its
caller once who holds the lock, then refuses with the store's LockHeld (same exit code).
`wait_until_free` is the same wait made before anything is planned, so a locked tenant is
reported (or waited out) before a plan is shown.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from reconciler.errors import LockHeld, UsageError
from reconciler.i18n import Said

if TYPE_CHECKING:
    from reconciler.store import StateLocation
    from reconciler.store.base import LockHolder, StateStore

_DURATION = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6}(?:\.\d{1,3})?)s?)?")
_FIRST_DELAY, _MAX_DELAY = 0.05, 2.0  # seconds between tries: doubling, capped


def parse_duration(text: str) -> float:
    """Seconds in `30s`, `5m`, `1h`, `1m30s`, `0` or `2.5`; UsageError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise UsageError(
            Said.of(
                "--lock-timeout {text!r} is not a duration: use e.g. 30s, 5m, 1h or 0 "
                "(fail at once)",
                text=text,
            )
        )
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _waited_in_vain(held: LockHeld, timeout: float) -> Said:
    """The store's LockHeld message (said in any language, as it was raised) once
    `--lock-timeout` waited `timeout` seconds for the holder in vain."""
    error = held.args[0] if len(held.args) == 1 and isinstance(held.args[0], str) else str(held)
    return Said.of(
        "{error} (waited {duration} for it: --lock-timeout)",
        error=error,
        duration=show_duration(timeout),
    )


def show_duration(seconds: float) -> str:
    """`1m30s`, `45s`, `0s`: a duration as the option takes it."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s" if minutes and rest else f"{minutes}m" if minutes else f"{rest}s"


@dataclass(frozen=True)
class LockWait:
    """How long to wait for a held lock (0: refuse at once, as the store does), and whom to
    tell, once, that the wait began: `on_wait(holder, timeout)`."""

    timeout: float = 0.0
    on_wait: Callable[[LockHolder, float], None] | None = None

    @contextmanager
    def lock(self, store: StateStore, tenant_key: str, operation: str) -> Iterator[LockHolder]:
        """`store.lock(tenant_key, operation)`, tried again while another holder has it."""
        deadline = time.monotonic() + self.timeout
        delay, told = _FIRST_DELAY, False
        while True:
            stack = ExitStack()
            try:
                holder = stack.enter_context(store.lock(tenant_key, operation))
            except LockHeld as held:
                left = deadline - time.monotonic()
                if left <= 0:
                    if self.timeout <= 0:
                        raise
                    raise LockHeld(_waited_in_vain(held, self.timeout)) from held
                if not told:
                    self._tell(store, tenant_key)
                    told = True
                time.sleep(min(delay, left))
                delay = min(delay * 2, _MAX_DELAY)
                continue
            with stack:
                yield holder
            return

    def _tell(self, store: StateStore, tenant_key: str) -> None:
        holder = next((h for h in store.list_locks() if h.tenant_key == tenant_key), None)
        if holder is not None and self.on_wait is not None:
            self.on_wait(holder, self.timeout)

    def around(self, store: StateStore) -> StateStore:
        """`store` whose `lock` waits like this (what the executor is given)."""
        return cast("StateStore", _WaitingStore(store, self)) if self.timeout > 0 else store


class _WaitingStore:
    """A store whose `lock` waits: everything else is the store's own."""

    def __init__(self, store: StateStore, wait: LockWait) -> None:
        self._store, self._wait = store, wait

    def lock(self, tenant_key: str, operation: str) -> Any:
        return self._wait.lock(self._store, tenant_key, operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def wait_until_free(state: StateLocation, tenant_key: str, wait: LockWait) -> None:
    """Before planning: refuse (LockHeld) or wait while a live apply holds the tenant.

    The lock is not kept (the executor takes it, waiting the same way); a lock left by a
    dead process is left for the executor to take over and report.
    """
    if not state.exists:  # no store yet: nobody ever locked this tenant through it
        return
    with closing(state.open()) as store:
        held = [h for h in store.list_locks() if h.tenant_key == tenant_key and not h.stale]
        if held:
            with wait.lock(store, tenant_key, "apply"):
                pass

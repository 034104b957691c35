"""Pacing of LINE WORKS API calls: one limiter per API, retry backoff, the server's hints.

The rate limit is per API *and per LINE WORKS domain* (docs/lineworks.md, "Rate limits"):
other apps and other runners of the same domain spend the same budget. So a limiter keeps its
own pace, follows the `rateLimit-*` headers when an answer carries them, and backs off
when a 429 says someone else took the budget. A limiter is thread-safe: concurrent workers
sending to the same API share one limiter and so one budget.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Runs planned to last longer than this many windows (30 minutes at the real 60 s window)
#: keep to half the documented limit (the ja rate-limits page).
LONG_RUN_WINDOWS = 30
# After a 429 the pace drops to this share (once per window however many 429s came: one
# congestion signal), and climbs back a step per window without a 429.
_BACKOFF, _FLOOR, _RECOVER = 0.75, 0.25, 0.1


@dataclass
class RateLimiter:
    """Keeps one API under `rate` requests in any `window` seconds.

    A token bucket refilled at pace/(window·(1+margin)) holding at most `burst` tokens, with
    burst ≤ rate·margin/(1+margin): then any window of that length sees at most
    burst + rate/(1+margin) ≤ rate requests, while a request that came back late can be made
    up for instead of losing its slot. `margin` also absorbs network jitter. `share` (≤ 1) is
    the part of `rate` this client takes now: lowered by 429s it did not expect.
    """

    rate: float
    window: float = 60.0
    margin: float = 0.02
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    share: float = field(default=1.0, init=False)
    throttled: int = field(default=0, init=False)  # 429s this limiter was told of
    _tokens: float = field(default=1.0, init=False)
    _stamp: float | None = field(default=None, init=False)
    _moved: float | None = field(default=None, init=False)  # when `share` last changed
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def interval(self) -> float:
        """Seconds per request at the sustained pace."""
        return self.window / (self.rate * self.share) * (1.0 + self.margin)

    @property
    def burst(self) -> float:
        """Requests that may be made up for at once (at least one)."""
        return max(1.0, float(int(self.rate * self.share * self.margin / (1.0 + self.margin))))

    def acquire(self) -> None:
        """Wait for this API's next slot."""
        with self._lock:
            now = self.clock()
            if self._stamp is None:
                self._stamp = now
            if now > self._stamp:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) / self.interval)
                self._stamp = now
            # Take the token now (possibly going negative): later callers queue behind it.
            wait = max(0.0, (1.0 - self._tokens) * self.interval, self._stamp - now)
            self._tokens -= 1.0
        if wait > 0:
            self.sleep(wait)

    def hold_off(self, seconds: float) -> None:
        """No request of this API before `seconds` from now."""
        with self._lock:
            self._tokens = min(self._tokens, 0.0)
            self._stamp = max(self._stamp or 0.0, self.clock() + seconds)

    def limit_to(self, rate: float) -> None:
        """Keep to `rate` from now on (a long run's half, or the server's rateLimit-limit)."""
        with self._lock:
            self.rate = rate

    def throttle(self, seconds: float) -> None:
        """The server answered 429: wait, and take a smaller share of the budget."""
        self.hold_off(seconds)
        with self._lock:
            self.throttled += 1
            now = self.clock()
            if self._moved is None or now - self._moved >= self.window:
                self.share, self._moved = max(_FLOOR, self.share * _BACKOFF), now

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow the answer's `rateLimit-remaining`/`-reset`: when what is left of the
        window is less than this pace would spend, spread it evenly over the rest."""
        remaining = _number(headers.get("ratelimit-remaining"))
        reset = _number(headers.get("ratelimit-reset"))
        with self._lock:
            now = self.clock()
            if self.share < 1.0 and self._moved is not None and now - self._moved >= self.window:
                self.share, self._moved = min(1.0, self.share + _RECOVER), now
        if remaining is None or reset is None or reset <= 0:
            return
        if remaining < 1:
            self.hold_off(reset)
        elif reset / remaining > self.interval:
            # Others spend this window too: one request per reset/remaining seconds.
            with self._lock:
                now = self.clock()
                if self._stamp is None or self._stamp < now:
                    self._stamp = now  # tokens are counted from here
                # Next slot `reset / remaining` seconds from now, not one interval.
                self._tokens = min(self._tokens, 1.0 - reset / remaining / self.interval)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in total time per request."""

    base: float = 0.5
    cap: float = 30.0
    max_time: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


def retry_after(headers: Mapping[str, str], *, reset: bool = True) -> float | None:
    """Seconds from Retry-After (delta or HTTP date), else (`reset`) the documented
    rateLimit-reset: right for a 429, not for a poll (every answer carries that header)."""
    raw = headers.get("retry-after") or (headers.get("ratelimit-reset") if reset else None)
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None

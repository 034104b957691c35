"""How long a plan's API calls take: requests per API and the duration at the limits in force.

One model for the plan's note, apply's ETA and the bench: each API (link-to-line,
unlink-to-works, …) has its own budget of `rate` requests per `window`, and apply runs the
APIs of one phase side by side (lanes.py), one phase after the other; so a phase lasts as
long as its slowest API, and the duration is the sum of that over the phases. `bound` is the
same at the full documented limit with no margin: what no client can beat.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.actions import Action, Change
from reconciler.model import ChannelName
from reconciler.providers.lineworks.limiter import LONG_RUN_WINDOWS

__all__ = ["ALL_MEMBERS", "Estimate", "api_of", "directory_pages", "estimate", "lane_of"]

_SUFFIX = {ChannelName.LINE: "line", ChannelName.LINEWORKS: "works"}
_MARGIN = 1.02  # the limiter's pace keeps this much under the limit (limiter.RateLimiter)
PAGE = 100  # GET /users count maximum (user-list docs)
#: What names the bulk grant's API apart from a member's link (notes.py says it translated).
ALL_MEMBERS = " (all members)"


def api_of(change: Change) -> str:
    """The rate-limited API a change's request goes to, e.g. `link-to-line`."""
    suffix = _SUFFIX[change.channel]
    if change.action is Action.GRANT_ALL_MEMBERS:
        return f"link-to-{suffix}{ALL_MEMBERS}"
    verb = "link" if change.action is Action.ADD_MEMBER else "unlink"
    return f"{verb}-to-{suffix}"


def directory_pages(members: int) -> int:
    """GET /users requests to read a directory of `members` (100 a page, at least one)."""
    return max(1, math.ceil(members / PAGE))


@dataclass(frozen=True)
class Estimate:
    """The API requests of a plan and how long they take."""

    requests: dict[str, int]  # per API, in the order apply first sends to it
    limit: float  # the documented limit per API per window
    rate: float  # the pace apply keeps to: the limit, or half of it for a long run
    window: float  # seconds (60 on the real API)
    seconds: float  # apply's duration at `rate`: per phase its slowest API, summed
    bound: float  # the same at the full limit without the limiter's margin
    side_by_side: bool = False  # some phase has requests to more than one API

    @property
    def total(self) -> int:
        """Requests of every API."""
        return sum(self.requests.values())

    @property
    def halved(self) -> bool:
        """Planned to run longer than 30 minutes: it keeps to half the limit."""
        return self.rate < self.limit

    def pace(self) -> str:
        """The rate in force, as `240 req/min` (or per scaled window)."""
        unit = "min" if self.window == 60.0 else f"{self.window:g} s"
        return f"{self.rate:g} req/{unit}"


def estimate(changes: Sequence[Change], limit: float, window: float) -> Estimate:
    """The API requests of `changes` (those run by API) at `limit` per `window` per API,
    halved when the run would last over 30 windows (the ja rate-limits page)."""
    api = [c for c in changes if c.execution == "api"]
    requests = Counter(api_of(c) for c in api)
    phases: dict[int, Counter[str]] = {}
    for change in api:
        phases.setdefault(int(change.phase), Counter())[lane_of(change)] += 1
    slowest = sum(max(per.values()) for per in phases.values())
    bound = slowest * window / limit
    rate = limit / 2 if bound * _MARGIN > LONG_RUN_WINDOWS * window else limit
    seconds = slowest * window / rate * _MARGIN
    several = any(len(per) > 1 for per in phases.values())
    return Estimate(dict(requests), limit, rate, window, seconds, bound, several)


def lane_of(change: Change) -> str:
    """The API a change's request spends the budget of, all-members grants with the
    member links of their channel: the lane it runs in (lanes.py)."""
    return api_of(change).removesuffix(ALL_MEMBERS)

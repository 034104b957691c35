"""HTTP client for LINE WORKS API 2.0: service-account token, rate limiter, retries, pages, 202s.

Every request goes through `LineWorksClient.call`; nothing here knows about plans or channels.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.errors import TenantError, TenantRuleError
from reconciler.i18n import Said
from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.providers.lineworks.limiter import (
    Clock,
    RateLimiter,
    RetryPolicy,
    Sleep,
    retry_after,
)
from reconciler.providers.lineworks.refusals import Handling, Refusal, classify
from reconciler.providers.lineworks.token import TokenSource, json_of

__all__ = ["ApiError", "LineWorksClient", "RateLimiter", "Response", "RetryPolicy"]

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(TenantRuleError):
    """LINE WORKS refused a request (a 4xx other than 401/429); `refusal` says which kind."""

    def __init__(self, operation: str, refusal: Refusal) -> None:
        self.operation, self.refusal = operation, refusal
        self.status, self.code, self.description = (
            refusal.status,
            refusal.code,
            refusal.description,
        )
        super().__init__(
            Said.of(
                "LINE WORKS refused {operation} ({answer})",
                operation=operation,
                answer=refusal.answer,
            )
        )


class RetryBudgetExceeded(TenantError):
    """Retries of one request ran out of their time budget."""


class NotSent(TenantError):
    """A batch was stopping (a refusal under --fail-fast, an error, Ctrl-C), so this request
    was not sent: the change was not attempted."""


class PollTimeout(TenantError):
    """An accepted (202) operation did not finish within the poll timeout."""


@dataclass(frozen=True)
class Response:
    """The parts of an HTTP response the provider uses."""

    status: int
    body: Any
    headers: Mapping[str, str]


class LineWorksClient:
    """Authenticated, rate-limited, retrying calls to one LINE WORKS domain."""

    def __init__(
        self,
        config: LineWorksConfig,
        *,
        http: httpx.Client | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
            headers={"User-Agent": "lineworks-reconciler"},
        )
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self.retry = retry or RetryPolicy(max_time=config.max_retry_time)
        self.tokens = TokenSource(config, self._http, clock)
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()  # workers of several APIs share this client
        self._long = False  # this run is planned to last over 30 minutes: half the limit
        self._limit = float(config.rate)  # the documented limit in force (or rateLimit-limit)
        self.requests = 0  # HTTP requests sent to the API (tokens excluded)
        self.retries = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def now(self) -> float:
        """The client's clock (monotonic seconds; a test's own clock when it gave one)."""
        return self._clock()

    def limiter(self, operation: str) -> RateLimiter:
        """The limiter of one API operation (the docs limit each operation separately)."""
        with self._lock:
            if operation not in self._limiters:
                self._limiters[operation] = RateLimiter(
                    self.pace, self.config.rate_window, clock=self._clock, sleep=self._sleep
                )
            return self._limiters[operation]

    @property
    def pace(self) -> float:
        """Requests per window each API keeps to now: the limit, or half of it for a long run."""
        return self._limit / 2 if self._long else self._limit

    @property
    def throttled(self) -> int:
        """429 answers received so far (every API)."""
        return sum(limiter.throttled for limiter in self._limiters.values())

    def plan_run(self, long: bool) -> float:
        """The run about to start lasts over 30 minutes (`long`): keep to half the limit
        (the ja rate-limits page), else to the limit. Returns the pace in force."""
        self._long = long
        self._keep_pace()
        return self.pace

    @property
    def limit(self) -> float:
        """The documented limit per API in force (LW_RATE_LIMIT, or a lower rateLimit-limit)."""
        return self._limit

    def _keep_pace(self) -> None:
        for limiter in self._limiters.values():
            limiter.limit_to(self.pace)

    def _follow(self, limiter: RateLimiter, headers: httpx.Headers) -> None:
        """The answer's rateLimit-* headers: a lower limit than configured wins."""
        try:
            limit = float(headers.get("ratelimit-limit", ""))
        except ValueError:
            limit = 0.0
        if 0 < limit < self._limit:
            self._limit = limit
            self._keep_pace()
        limiter.observe(headers)

    def call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        url: str | None = None,
        stop: threading.Event | None = None,
    ) -> Response:
        """One API request with limiter, token, retries; 4xx refusals raise ApiError.
        Once `stop` is set, raises NotSent instead of sending (a first try or a retry of a
        request the API did not take: the caller's batch is stopping)."""
        target = url or f"{self.config.api_base}{path}"
        started = self._clock()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            limiter = self.limiter(operation)
            limiter.acquire()
            if stop is not None and stop.is_set():
                raise NotSent(
                    Said.of("{operation} not sent: the batch was stopping", operation=operation)
                )
            try:
                reply = self._send(method, target, params, json)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._pause(operation, started, attempt, f"{type(exc).__name__}", None)
                continue
            self._follow(limiter, reply.headers)
            if _expired_token(reply) and not refreshed:
                self.tokens.invalidate()  # expired or revoked early: one fresh token, once
                refreshed = True
                continue
            if reply.status_code in _RETRY_STATUS:
                if reply.status_code == 429:  # another client of the domain may share it
                    limiter.throttle(0.0)
                wait = retry_after(reply.headers) if reply.status_code in (429, 503) else None
                self._pause(operation, started, attempt, f"HTTP {reply.status_code}", wait)
                continue
            if reply.status_code >= 400:
                refusal = _refusal(operation, reply)
                if refusal.handling is Handling.RETRY:  # busy with this member: clears itself
                    self._pause(operation, started, attempt, refusal.answer, None)
                    continue
                raise ApiError(operation, refusal)
            return Response(
                reply.status_code, json_of(reply), {k.lower(): v for k, v in reply.headers.items()}
            )

    def pages(
        self, path: str, operation: str, item_key: str, params: Mapping[str, str | int]
    ) -> Iterator[Any]:
        """Every item of a cursor-paginated list (responseMetaData.nextCursor)."""
        query: dict[str, str | int] = dict(params)
        seen: set[str] = set()
        while True:
            body = self.call("GET", path, operation, params=query).body
            if not isinstance(body, dict) or not isinstance(body.get(item_key, []), list):
                raise TenantError(
                    Said.of(
                        "LINE WORKS answered {operation} with an unexpected body (no `{key}` list)",
                        operation=operation,
                        key=item_key,
                    )
                )
            yield from body.get(item_key, [])
            cursor = (body.get("responseMetaData") or {}).get("nextCursor")
            if not cursor:
                return
            if cursor in seen:  # a server bug must not loop forever or double-count
                raise TenantError(
                    Said.of(
                        "LINE WORKS returned the same cursor twice for {operation}",
                        operation=operation,
                    )
                )
            seen.add(cursor)
            query["cursor"] = cursor  # httpx percent-encodes it (cursors hold + / =)

    def wait(self, accepted: Response, operation: str) -> Response:
        """Follow a 202's status location until the operation ends; a refusal raises.

        ASSUMPTION (docs/lineworks.md): the docs describe 202 but no status resource; when
        the answer names one in `Location`, it is polled; otherwise accepted means done.
        """
        location = accepted.headers.get("location")
        if accepted.status != 202 or not location:
            return accepted
        url = location if "://" in location else _join(self.config.api_base, location)
        deadline = self._clock() + self.config.poll_timeout
        delay = 0.05
        while True:
            reply = self.call("GET", "", "GET operation status", url=url)
            state = (
                str(reply.body.get("status", "")).upper() if isinstance(reply.body, dict) else ""
            )
            if reply.status != 202 and state not in ("IN_PROGRESS", "PENDING", "RUNNING"):
                if state in ("FAILED", "ERROR"):
                    body = reply.body if isinstance(reply.body, dict) else {}
                    code = str(body.get("code", "FAILED"))
                    # The API's own words when it gave some; lwr's (translated) when not.
                    text = (
                        str(body["description"])
                        if "description" in body
                        else Said.of("the operation failed")
                    )
                    raise ApiError(
                        operation, Refusal("failed", Handling.REFUSE, False, 409, code, text)
                    )
                return reply
            if self._clock() >= deadline:
                raise PollTimeout(
                    Said.of(
                        "{operation} was accepted but is still in progress after {seconds:g} "
                        "s; it may still finish. Run `lwr plan` later to see where the "
                        "tenant is",
                        operation=operation,
                        seconds=self.config.poll_timeout,
                    )
                )
            hinted = retry_after(reply.headers, reset=False)
            self._sleep(
                min(hinted if hinted is not None else delay, max(0.0, deadline - self._clock()))
            )
            delay = min(delay * 2, 5.0)

    # ------------------------------------------------------------------ plumbing

    def _send(
        self, method: str, url: str, params: Mapping[str, str | int] | None, json: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens.get()}"}
        with self._lock:
            self.requests += 1
        return self._http.request(method, url, params=params, json=json, headers=headers)

    def _pause(
        self, operation: str, started: float, attempt: int, why: str, hinted: float | None
    ) -> None:
        """Wait before the next attempt, or give up when the retry budget is spent."""
        wait = (
            hinted + self._rng.uniform(0.0, 0.05 * max(hinted, 0.2))
            if hinted is not None
            else self.retry.backoff(attempt, self._rng)
        )
        elapsed = self._clock() - started
        if elapsed + wait > self.retry.max_time:
            raise RetryBudgetExceeded(
                Said.counted(
                    "gave up on {operation} after {n} attempt in {elapsed:.1f} s (last: "
                    "{why}; retry budget {budget:g} s). LINE WORKS may be unavailable or "
                    "rate-limiting hard; the apply is journaled: run it again later",
                    "gave up on {operation} after {n} attempts in {elapsed:.1f} s (last: "
                    "{why}; retry budget {budget:g} s). LINE WORKS may be unavailable or "
                    "rate-limiting hard; the apply is journaled: run it again later",
                    attempt,
                    operation=operation,
                    elapsed=elapsed,
                    why=why,  # the transport's or the API's own words
                    budget=self.retry.max_time,
                )
            )
        self.retries += 1
        if hinted is not None:
            self.limiter(operation).hold_off(wait)  # the whole operation waits, not one call
        else:
            self._sleep(wait)


def _expired_token(reply: httpx.Response) -> bool:
    """401, or 403 with code UNAUTHORIZED: what an expired token gets (the official sample
    refreshes on both; ASSUMPTION, docs/lineworks.md#2-authentication-service-account-jwt)."""
    if reply.status_code == 401:
        return True
    if reply.status_code != 403:
        return False
    body = json_of(reply)
    return isinstance(body, dict) and str(body.get("code", "")) == "UNAUTHORIZED"


def _refusal(operation: str, reply: httpx.Response) -> Refusal:
    body = json_of(reply)
    data = body if isinstance(body, dict) else {}
    return classify(
        operation,
        reply.status_code,
        str(data.get("code", httpx.codes.get_reason_phrase(reply.status_code))),
        str(data.get("description", data.get("message", ""))),
    )


def _join(base: str, location: str) -> str:
    split = httpx.URL(base)
    return (
        str(split.copy_with(raw_path=location.encode()))
        if location.startswith("/")
        else f"{base.rstrip('/')}/{location}"
    )

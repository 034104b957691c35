"""HTTP client for LINE WORKS API 2.0: service-account token, rate limiter, retries, pages, 202s.

Every request goes through `LineWorksClient.call`; nothing here knows about plans or channels.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from reconciler.errors import TenantError, TenantRuleError
from reconciler.providers.lineworks.config import LineWorksConfig

Clock = Callable[[], float]
Sleep = Callable[[float], None]

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Refusal codes meaning "busy with an earlier grant/revoke of this member": worth a retry.
# ASSUMPTION: the docs say such calls are refused but name no code (docs/lineworks.md).
BUSY_CODES = frozenset({"ALREADY_IN_PROGRESS", "IN_PROGRESS"})
_JWT_LIFETIME = 3600  # seconds; the assertion is used once, right away


class ApiError(TenantRuleError):
    """LINE WORKS answered a request with a refusal (4xx other than 401/429)."""

    def __init__(self, operation: str, status: int, code: str, description: str) -> None:
        self.operation, self.status, self.code, self.description = (
            operation,
            status,
            code,
            description,
        )
        detail = f"{code}: {description}" if description else code
        super().__init__(f"LINE WORKS refused {operation} (HTTP {status} {detail})")


class RetryBudgetExceeded(TenantError):
    """Retries of one request ran out of their time budget."""


class PollTimeout(TenantError):
    """An accepted (202) operation did not finish within the poll timeout."""


@dataclass
class RateLimiter:
    """Keeps one API operation under `rate` requests in any `window` seconds.

    A token bucket refilled at rate/(window·(1+margin)) holding at most `burst` tokens, with
    burst ≤ rate·margin/(1+margin): then any window of that length sees at most
    burst + rate/(1+margin) ≤ rate requests, while a request that came back late can be made
    up for instead of losing its slot. `margin` also absorbs network jitter.
    """

    rate: float
    window: float = 60.0
    margin: float = 0.02
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    _tokens: float = field(default=1.0, init=False)
    _stamp: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def interval(self) -> float:
        """Seconds per request at the sustained pace."""
        return self.window / self.rate * (1.0 + self.margin)

    @property
    def burst(self) -> float:
        """Requests that may be made up for at once (at least one)."""
        return max(1.0, float(int(self.rate * self.margin / (1.0 + self.margin))))

    def acquire(self) -> None:
        """Wait for this operation's next slot."""
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
        """The server said wait (429): no request of this operation before then."""
        with self._lock:
            self._tokens = min(self._tokens, 0.0)
            self._stamp = max(self._stamp or 0.0, self.clock() + seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in total time per request."""

    base: float = 0.5
    cap: float = 30.0
    max_time: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Response:
    """The parts of an HTTP response the provider uses."""

    status: int
    body: Any
    headers: Mapping[str, str]


class TokenSource:
    """Service-account access tokens (RFC 7523 JWT bearer), cached until shortly before expiry."""

    def __init__(self, config: LineWorksConfig, http: httpx.Client, clock: Clock) -> None:
        self._config, self._http, self._clock = config, http, clock
        self._token: str | None = None
        self._expires = 0.0
        self.issued = 0  # tokens fetched so far (observable in tests)

    def get(self) -> str:
        """A valid access token; fetches one when none is cached or it is about to expire."""
        if self._token is None or self._clock() >= self._expires:
            self._fetch()
        assert self._token is not None
        return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the API answered 401)."""
        self._token = None

    def assertion(self) -> str:
        """The signed JWT: iss = client id, sub = service account, iat/exp (auth-jwt docs)."""
        now = int(time.time())
        claims = {
            "iss": self._config.client_id,
            "sub": self._config.service_account,
            "iat": now,
            "exp": now + _JWT_LIFETIME,
        }
        try:
            return jwt.encode(claims, self._config.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise TenantError(
                "cannot sign the service-account assertion with the private key "
                f"file ({type(exc).__name__}); is it the key issued for "
                "this app?"
            ) from None

    def _fetch(self) -> None:
        form = {
            "assertion": self.assertion(),
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "scope": self._config.scope,
        }
        try:
            reply = self._http.post(self._config.auth_url, data=form)
        except httpx.HTTPError as exc:
            raise TenantError(
                f"cannot reach the LINE WORKS token endpoint "
                f"{self._config.auth_url}: {type(exc).__name__}"
            ) from None
        data = _json(reply)
        token = data.get("access_token") if isinstance(data, dict) else None
        if reply.status_code != 200 or not isinstance(token, str):
            error = data.get("error", "") if isinstance(data, dict) else ""
            text = data.get("error_description", "") if isinstance(data, dict) else ""
            raise TenantError(
                f"LINE WORKS refused the service-account token (HTTP {reply.status_code} "
                f"{error} {text}".rstrip()
                + "); check LW_CLIENT_ID, LW_CLIENT_SECRET, "
                "LW_SERVICE_ACCOUNT, LW_PRIVATE_KEY_FILE and the app's OAuth scopes"
            )
        lifetime = _seconds(data.get("expires_in"), default=3600.0)
        # Renew a little early: a request must never start with a token about to lapse.
        self._expires = self._clock() + lifetime - min(60.0, lifetime * 0.1)
        self._token = token
        self.issued += 1


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
        self.requests = 0  # HTTP requests sent to the API (tokens excluded)
        self.retries = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def limiter(self, operation: str) -> RateLimiter:
        """The limiter of one API operation (the docs limit each operation separately)."""
        if operation not in self._limiters:
            self._limiters[operation] = RateLimiter(
                self.config.rate, self.config.rate_window, clock=self._clock, sleep=self._sleep
            )
        return self._limiters[operation]

    def call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        url: str | None = None,
    ) -> Response:
        """One API request with limiter, token, retries; 4xx refusals raise ApiError."""
        target = url or f"{self.config.api_base}{path}"
        started = self._clock()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            self.limiter(operation).acquire()
            try:
                reply = self._send(method, target, params, json)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._pause(operation, started, attempt, f"{type(exc).__name__}", None)
                continue
            if reply.status_code == 401 and not refreshed:
                self.tokens.invalidate()  # expired or revoked early: one fresh token, once
                refreshed = True
                continue
            if reply.status_code in _RETRY_STATUS or _busy(reply):
                wait = _retry_after(reply.headers) if reply.status_code in (429, 503) else None
                self._pause(operation, started, attempt, f"HTTP {reply.status_code}", wait)
                continue
            return self._result(operation, reply)

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
                    f"LINE WORKS answered {operation} with an unexpected body "
                    f"(no `{item_key}` list)"
                )
            yield from body.get(item_key, [])
            cursor = (body.get("responseMetaData") or {}).get("nextCursor")
            if not cursor:
                return
            if cursor in seen:  # a server bug must not loop forever or double-count
                raise TenantError(f"LINE WORKS returned the same cursor twice for {operation}")
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
                    raise ApiError(
                        operation,
                        409,
                        str(body.get("code", "FAILED")),
                        str(body.get("description", "the operation failed")),
                    )
                return reply
            if self._clock() >= deadline:
                raise PollTimeout(
                    f"{operation} was accepted but is still in progress after "
                    f"{self.config.poll_timeout:g} s; it may still finish. Run "
                    "`lwr plan` later to see where the tenant is"
                )
            hinted = _retry_after(reply.headers)
            self._sleep(
                min(hinted if hinted is not None else delay, max(0.0, deadline - self._clock()))
            )
            delay = min(delay * 2, 5.0)

    # ------------------------------------------------------------------ plumbing

    def _send(
        self, method: str, url: str, params: Mapping[str, str | int] | None, json: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens.get()}"}
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
                f"gave up on {operation} after {attempt} attempt(s) in {elapsed:.1f} s (last: "
                f"{why}; retry budget {self.retry.max_time:g} s). LINE WORKS may be "
                "unavailable or rate-limiting hard; the apply is journaled: run it again later"
            )
        self.retries += 1
        if hinted is not None:
            self.limiter(operation).hold_off(wait)  # the whole operation waits, not one call
        else:
            self._sleep(wait)

    def _result(self, operation: str, reply: httpx.Response) -> Response:
        body = _json(reply)
        if reply.status_code >= 400:
            data = body if isinstance(body, dict) else {}
            raise ApiError(
                operation,
                reply.status_code,
                str(data.get("code", httpx.codes.get_reason_phrase(reply.status_code))),
                str(data.get("description", data.get("message", ""))),
            )
        return Response(reply.status_code, body, {k.lower(): v for k, v in reply.headers.items()})


def _json(reply: httpx.Response) -> Any:
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:
        return None


def _busy(reply: httpx.Response) -> bool:
    if reply.status_code not in (400, 409):
        return False
    body = _json(reply)
    return isinstance(body, dict) and str(body.get("code", "")) in BUSY_CODES


def _seconds(value: Any, *, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def _retry_after(headers: httpx.Headers | Mapping[str, str]) -> float | None:
    """Seconds from Retry-After (delta or HTTP date), else the documented rateLimit-reset."""
    raw = headers.get("retry-after") or headers.get("ratelimit-reset")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _join(base: str, location: str) -> str:
    split = httpx.URL(base)
    return (
        str(split.copy_with(raw_path=location.encode()))
        if location.startswith("/")
        else f"{base.rstrip('/')}/{location}"
    )

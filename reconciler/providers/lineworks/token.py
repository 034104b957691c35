"""Service-account access tokens for LINE WORKS API 2.0 (RFC 7523 JWT bearer grant).

One TokenSource per client, shared by the client's workers (lanes.py): fetching is locked,
so concurrent requests wait for one token instead of each fetching their own.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import jwt

from reconciler.errors import TenantError
from reconciler.i18n import Said
from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.providers.lineworks.limiter import Clock

__all__ = ["TokenSource", "json_of"]

_JWT_LIFETIME = 3600  # seconds; the assertion is used once, right away


class TokenSource:
    """Service-account access tokens (RFC 7523 JWT bearer), cached until shortly before expiry."""

    def __init__(self, config: LineWorksConfig, http: httpx.Client, clock: Clock) -> None:
        self._config, self._http, self._clock = config, http, clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()  # concurrent workers share one token
        self.issued = 0  # tokens fetched so far (observable in tests)

    def get(self) -> str:
        """A valid access token; fetches one when none is cached or it is about to expire."""
        with self._lock:
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
                Said.of(
                    "cannot sign the service-account assertion with the private key file "
                    "({error}); is it the key issued for this app?",
                    error=type(exc).__name__,
                )
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
                Said.of(
                    "cannot reach the LINE WORKS token endpoint {url}: {error}",
                    url=self._config.auth_url,
                    error=type(exc).__name__,
                )
            ) from None
        data = json_of(reply)
        token = data.get("access_token") if isinstance(data, dict) else None
        if reply.status_code != 200 or not isinstance(token, str):
            error = data.get("error", "") if isinstance(data, dict) else ""
            text = data.get("error_description", "") if isinstance(data, dict) else ""
            # The endpoint's own words (error, error_description) stay as they come.
            answer = f"HTTP {reply.status_code} {error} {text}".rstrip()
            raise TenantError(
                Said.of(
                    "LINE WORKS refused the service-account token ({answer}); check "
                    "LW_CLIENT_ID, LW_CLIENT_SECRET, LW_SERVICE_ACCOUNT, LW_PRIVATE_KEY_FILE "
                    "and the app's OAuth scopes (the free plan has no `user` scope: "
                    "docs/lineworks.md)",
                    answer=answer,
                )
            )
        lifetime = _seconds(data.get("expires_in"), default=3600.0)
        # Renew a little early: a request must never start with a token about to lapse.
        self._expires = self._clock() + lifetime - min(60.0, lifetime * 0.1)
        self._token = token
        self.issued += 1


def json_of(reply: httpx.Response) -> Any:
    """The answer's JSON body, or None (empty or not JSON)."""
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:
        return None


def _seconds(value: Any, *, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default

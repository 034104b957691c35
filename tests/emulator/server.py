"""The emulator's HTTP side: token endpoint, API routes, per-operation rate limits, faults.

A stdlib ThreadingHTTPServer bound to 127.0.0.1 on a free port; nothing leaves the machine.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import directory
from emulator.directory import decode_cursor, encode_cursor
from emulator.tenant import Answer, EmulatedTenant
from reconciler.model import ChannelName

_CHANNEL = {"line": ChannelName.LINE, "works": ChannelName.LINEWORKS}
_MEMBER_ROUTE = re.compile(r"^/v1\.0/users/([^/]+)/(link|unlink)-to-(line|works)$")
_BULK_ROUTE = re.compile(r"^/v1\.0/users/link-to-(line|works)$")
_URL_ROUTE = re.compile(r"^/v1\.0/users/([^/]+)/link-url$")
_OP_ROUTE = re.compile(r"^/v1\.0/operations/([^/]+)$")
_GROUP_MEMBERS_ROUTE = re.compile(r"^/v1\.0/groups/([^/]+)/members$")
#: What the test app may ask for (the scopes ticked in its Developer Console).
APP_SCOPES = frozenset(
    {"user", "user.read", "directory", "directory.read", "orgunit", "orgunit.read"}
    | {"group", "group.read"}
)
_KEY: rsa.RSAPrivateKey | None = None
_KEY_LOCK = threading.Lock()


def _test_key() -> rsa.RSAPrivateKey:
    """One RSA key per test process: generating one costs ~0.1 s."""
    global _KEY
    with _KEY_LOCK:
        if _KEY is None:
            _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _KEY


@dataclass(frozen=True)
class Credentials:
    """A test app: its ids, secret and a 0600 private key file."""

    client_id: str
    client_secret: str
    service_account: str
    domain_id: str
    key_file: Path
    scopes: frozenset[str] = APP_SCOPES  # ticked for the app in the Developer Console

    def env(self, emulator: Emulator, **extra: str) -> dict[str, str]:
        """The LW_* environment that points lwr at `emulator`."""
        return {
            "LW_CLIENT_ID": self.client_id,
            "LW_CLIENT_SECRET": self.client_secret,
            "LW_SERVICE_ACCOUNT": self.service_account,
            "LW_DOMAIN_ID": self.domain_id,
            "LW_PRIVATE_KEY_FILE": str(self.key_file),
            "LW_API_BASE": emulator.api_base,
            "LW_AUTH_URL": emulator.auth_url,
            **extra,
        }


def make_credentials(directory: Path, domain_id: str = "10000001") -> Credentials:
    """Write the test key (mode 0600) and return credentials that the emulator accepts."""
    pem = _test_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "private_key.pem"
    fd = os.open(key_file, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return Credentials(
        "test-client-id",
        "s3cr3t-" + secrets.token_hex(8),
        "test.serviceaccount@example.co.jp",
        domain_id,
        key_file,
    )


FaultKind = Literal["500", "503", "429", "slow", "drop", "drop_after", "refuse", "repeat_cursor"]


@dataclass
class Fault:
    """Injected trouble for requests whose operation contains `match`.

    `skip` matching requests pass first, then `times` get the fault. `drop_after` applies
    the request's effect and closes the connection without an answer (a lost reply);
    `refuse` answers `status` with `code` and `description` (a refusal of any kind);
    `repeat_cursor` answers a list's first page, whatever cursor was sent, with one
    `nextCursor` always (a server bug a client must not loop on).
    """

    kind: FaultKind
    match: str = ""
    times: int = 1
    skip: int = 0
    retry_after: float = 0.05
    delay: float = 0.5
    status: int = 400
    code: str = "INVALID_PARAMETER"
    description: str = ""
    seen: int = field(default=0, init=False)


@dataclass
class Limits:
    """The emulator's limits and scenarios; scaled down so tests take seconds.

    The defaults are what the docs describe. Scenarios: `status_location` (202 answers name
    a status resource, which the docs never describe), `expired_status` 403 (an expired token
    gets 403 UNAUTHORIZED instead of 401), `headers` False (no rateLimit-* headers),
    `neighbour` (another client of the domain spends this many requests per window of
    every API whose operation contains `neighbour_match`).
    """

    rate: int = 240  # requests per window per API operation (docs: 240/min on paid plans)
    window: float = 60.0
    token_lifetime: float = 86400.0  # docs: access tokens live 1 h or 24 h
    page_max: int = 100  # GET /users count maximum (docs)
    status_location: bool = False
    expired_status: int = 401
    headers: bool = True  # rateLimit-limit/-remaining/-reset on every answer (docs)
    neighbour: float = 0.0
    neighbour_match: str = ""


@dataclass(frozen=True)
class LogEntry:
    """One request as the emulator saw it."""

    at: float
    method: str
    operation: str
    status: int  # 0: connection dropped


class Emulator:
    """LINE WORKS API 2.0 on 127.0.0.1: start it, point lwr at `api_base`/`auth_url`."""

    def __init__(
        self, tenant: EmulatedTenant, credentials: Credentials, limits: Limits | None = None
    ) -> None:
        self.tenant, self.credentials = tenant, credentials
        self.limits = limits or Limits()
        self.faults: list[Fault] = []
        self.log: list[LogEntry] = []
        self.tokens: dict[str, float] = {}
        self.token_scopes: dict[str, frozenset[str]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._neighbour_next: dict[str, float] = {}
        self.neighbour_sent = 0  # requests the other client got through
        self._lock = threading.Lock()
        self._public = _test_key().public_key()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_base(self) -> str:
        """Base of the API routes, like https://www.worksapis.com/v1.0."""
        return f"{self.url}/v1.0"

    @property
    def auth_url(self) -> str:
        """The token endpoint, like https://auth.worksmobile.com/oauth2/v2.0/token."""
        return f"{self.url}/oauth2/v2.0/token"

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, status: int | None = None, match: str = "") -> int:
        """Requests logged with this status (any when None) whose operation contains `match`."""
        with self._lock:
            return sum(
                1
                for e in self.log
                if (status is None or e.status == status) and match in e.operation
            )

    # ------------------------------------------------------------------ request pipeline

    def fault_for(self, operation: str) -> Fault | None:
        """The fault this request gets, if any (counted, deterministic)."""
        with self._lock:
            for fault in self.faults:
                if fault.match in operation:
                    fault.seen += 1
                    if fault.skip < fault.seen <= fault.skip + fault.times:
                        return fault
        return None

    def over_limit(self, operation: str) -> float | None:
        """Seconds until the window has room, when this request is over the rate limit."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(operation, deque())
            self._neighbour_spends(operation, window, now)
            while window and window[0] <= now - self.limits.window:
                window.popleft()
            if len(window) >= self.limits.rate:
                return window[0] + self.limits.window - now
            window.append(now)
            return None

    def budget(self, operation: str) -> dict[str, str]:
        """The documented rateLimit-* headers: limit, what is left of the window, and the
        seconds until a slot frees (the window slides)."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(operation, deque())
            left = max(0, self.limits.rate - len(window))
            reset = window[0] + self.limits.window - now if window else self.limits.window
        return {
            "rateLimit-limit": str(self.limits.rate),
            "rateLimit-remaining": str(left),
            "rateLimit-reset": f"{max(reset, 0.001):.3f}",
        }

    def _neighbour_spends(self, operation: str, window: deque[float], now: float) -> None:
        """Another client of the domain: its requests land in the same window (lock held)."""
        limits = self.limits
        if limits.neighbour <= 0 or limits.neighbour_match not in operation:
            return
        at = self._neighbour_next.setdefault(operation, now)
        step = limits.window / limits.neighbour
        while at <= now:
            while window and window[0] <= at - limits.window:
                window.popleft()
            if len(window) < limits.rate:  # it gets 429s too when the window is full
                window.append(at)
                self.neighbour_sent += 1
            at += step
        self._neighbour_next[operation] = at

    def record(self, method: str, operation: str, status: int) -> None:
        """Add to the request log."""
        with self._lock:
            self.log.append(LogEntry(time.monotonic(), method, operation, status))

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST /oauth2/v2.0/token: RFC 7523 JWT bearer grant, checked like the real one."""
        creds = self.credentials
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        if (
            form.get("client_id") != creds.client_id
            or form.get("client_secret") != creds.client_secret
        ):
            return 401, {"error": "invalid_client", "error_description": "unknown client"}
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self._public,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": type(exc).__name__}
        if claims["iss"] != creds.client_id or claims["sub"] != creds.service_account:
            return 400, {"error": "invalid_grant", "error_description": "iss/sub mismatch"}
        asked = frozenset(form.get("scope", "").replace(",", " ").split())
        if "user" not in asked or not asked <= creds.scopes:
            return 400, {"error": "invalid_scope"}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.limits.token_lifetime
            self.token_scopes[token] = asked
        return 200, {
            "access_token": token,
            "refresh_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "scope": form["scope"],
            "expires_in": str(math.ceil(self.limits.token_lifetime)),
        }

    def authorized(self, header: str | None) -> bool:
        """A Bearer token this emulator issued and that has not expired."""
        token = (header or "").removeprefix("Bearer ")
        with self._lock:
            expires = self.tokens.get(token)
        return expires is not None and expires > time.monotonic()

    def granted(self, header: str | None) -> frozenset[str]:
        """The scopes the request's token was issued with."""
        with self._lock:
            return self.token_scopes.get((header or "").removeprefix("Bearer "), frozenset())

    def route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        scopes: frozenset[str] = APP_SCOPES,
    ) -> Answer:
        """The API routes."""
        tenant = self.tenant
        if method == "GET" and path == "/v1.0/users":
            return self._users(query)
        if method == "GET":
            with tenant.lock:
                listed = directory.route(
                    tenant.org, tenant.domain_id, path, query, self.limits.page_max, scopes
                )
            if listed is not None:
                return Answer(*listed)
        if method == "POST" and (m := _BULK_ROUTE.match(path)):
            return tenant.link_all(_CHANNEL[m.group(1)])
        if method == "POST" and (m := _MEMBER_ROUTE.match(path)):
            return tenant.link(_CHANNEL[m.group(3)], unquote(m.group(1)), m.group(2) == "link")
        if method == "GET" and (m := _URL_ROUTE.match(path)):
            return tenant.link_url(unquote(m.group(1)))
        if method == "GET" and (m := _OP_ROUTE.match(path)):
            return tenant.operation(m.group(1))
        return Answer(404, {"code": "NOT_FOUND", "description": "no such route"})

    def _users(self, query: dict[str, list[str]]) -> Answer:
        if query.get("domainId", [""])[0] != self.tenant.domain_id:
            return Answer(403, {"code": "FORBIDDEN", "description": "another domain"})
        try:
            count = int(query.get("count", ["100"])[0])
            cursor = query.get("cursor", [None])[0]
            offset = decode_cursor(cursor) if cursor is not None else 0
        except ValueError:
            return Answer(400, {"code": "INVALID_PARAMETER", "description": "bad count/cursor"})
        if not 1 <= count <= self.limits.page_max:
            return Answer(400, {"code": "INVALID_PARAMETER", "description": "count 1..100"})
        rows, following = self.tenant.users_page(offset, count)
        meta = {"nextCursor": encode_cursor(following)} if following is not None else {}
        return Answer(200, {"users": rows, "responseMetaData": meta})


def operation_of(method: str, path: str) -> str:
    """The rate-limited API operation of a request, e.g. POST /users/{userId}/link-to-line."""
    path = _MEMBER_ROUTE.sub(lambda m: f"/v1.0/users/{{userId}}/{m.group(2)}-to-{m.group(3)}", path)
    path = _URL_ROUTE.sub("/v1.0/users/{userId}/link-url", path)
    path = _OP_ROUTE.sub("/v1.0/operations/{operationId}", path)
    path = _GROUP_MEMBERS_ROUTE.sub("/v1.0/groups/{groupId}/members", path)
    return f"{method} {path.removeprefix('/v1.0')}"


def _handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API
        # One write per answer and no Nagle: headers and body in separate segments would
        # meet the client's delayed ACK and cost ~40 ms a request.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests read Emulator.log instead

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            body = self._body()
            if split.path == "/oauth2/v2.0/token" and method == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                status, payload = emulator.issue_token(form)
                emulator.record(method, "POST /oauth2/v2.0/token", status)
                self._send(status, payload)
                return
            operation = operation_of(method, split.path)
            if not emulator.authorized(self.headers.get("Authorization")):
                status = emulator.limits.expired_status
                emulator.record(method, operation, status)
                self._send(status, {"code": "UNAUTHORIZED", "description": "invalid token"})
                return
            wait = emulator.over_limit(operation)
            if wait is not None:
                emulator.record(method, operation, 429)
                self._send(
                    429,
                    {"code": "TOO_MANY_REQUESTS", "description": "API rate limit exceeded"},
                    {
                        "Retry-After": f"{max(wait, 0.001):.3f}",
                        "rateLimit-limit": str(emulator.limits.rate),
                        "rateLimit-remaining": "0",
                        "rateLimit-reset": f"{max(wait, 0.001):.3f}",
                    },
                )
                return
            fault = emulator.fault_for(operation)
            if fault is not None and self._inject(fault, method, operation, split, body):
                return
            self._answer(method, operation, split)

        def _answer(self, method: str, operation: str, split: Any) -> None:
            scopes = emulator.granted(self.headers.get("Authorization"))
            answer = emulator.route(method, split.path, parse_qs(split.query), scopes)
            emulator.record(method, operation, answer.status)
            headers = emulator.budget(operation) if emulator.limits.headers else {}
            if answer.op_id is not None and emulator.limits.status_location:
                headers["Location"] = f"/v1.0/operations/{answer.op_id}"
            self._send(answer.status, answer.body, headers)

        def _inject(
            self, fault: Fault, method: str, operation: str, split: Any, body: bytes
        ) -> bool:
            """Deliver `fault`; True when the request is fully handled."""
            if fault.kind == "refuse":
                emulator.record(method, operation, fault.status)
                self._send(fault.status, {"code": fault.code, "description": fault.description})
                return True
            if fault.kind == "repeat_cursor":
                query = {k: v for k, v in parse_qs(split.query).items() if k != "cursor"}
                answer = emulator.route(method, split.path, query)
                emulator.record(method, operation, answer.status)
                body = dict(answer.body) if isinstance(answer.body, dict) else {}
                body["responseMetaData"] = {"nextCursor": encode_cursor(1)}
                self._send(answer.status, body)
                return True
            if fault.kind in ("500", "503", "429"):
                status = int(fault.kind)
                emulator.record(method, operation, status)
                extra = {"Retry-After": f"{fault.retry_after:.3f}"} if status != 500 else {}
                self._send(status, {"code": "INJECTED", "description": "injected fault"}, extra)
                return True
            if fault.kind == "slow":
                time.sleep(fault.delay)  # then answer normally; the client may have left
                return False
            if fault.kind == "drop_after":
                emulator.route(method, split.path, parse_qs(split.query))  # effect lands
            emulator.record(method, operation, 0)
            self.close_connection = True  # no answer at all: the connection just ends
            return True

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client timed out and left

    return Handler


def started(
    tenant: EmulatedTenant, credentials: Credentials, limits: Limits | None = None
) -> Iterator[Emulator]:
    """Context-free helper for fixtures: yield a running emulator, stop it afterwards."""
    with Emulator(tenant, credentials, limits) as emulator:
        yield emulator

"""The LINE WORKS client and its configuration: credentials, tokens, limiter, retries, pages.

Real HTTP to the emulator on 127.0.0.1; only the limiter's clock is simulated, in its own test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator import Fault, Limits
from emulator.harness import Harness, emulated

from reconciler.errors import TenantError, UsageError
from reconciler.providers.lineworks import LineWorksConfig
from reconciler.providers.lineworks.client import (
    ApiError,
    LineWorksClient,
    RateLimiter,
    RetryPolicy,
)

D = "example.co.jp"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with emulated(tmp_path) as harness:
        for i in range(257):
            harness.tenant.add_user(f"user{i:03d}@{D}", f"社員 {i}")
        yield harness


def client(h: Harness, **options: object) -> LineWorksClient:
    config = LineWorksConfig.from_uri(h.uri(**options), h.env())
    return LineWorksClient(
        config, retry=RetryPolicy(base=0.01, cap=0.1, max_time=config.max_retry_time)
    )


# -- configuration -----------------------------------------------------------------------------


def test_config_from_env_with_uri_query_winning(h: Harness) -> None:
    config = LineWorksConfig.from_uri(h.uri(rate=60, domain="example.co.jp"), h.env())
    assert (config.client_id, config.domain_id, config.rate) == ("test-client-id", "10000001", 60)
    assert config.key == f"lineworks:10000001@{h.emulator.url.removeprefix('http://')}"
    assert h.credentials.client_secret not in repr(config) and "PRIVATE" not in repr(config)


def test_missing_credentials_name_the_variables_not_values(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        LineWorksConfig.from_uri("lineworks:", {"LW_CLIENT_ID": "x"})
    assert "LW_CLIENT_SECRET" in str(caught.value) and "LW_PRIVATE_KEY_FILE" in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(h: Harness, mode: int) -> None:
    os.chmod(h.credentials.key_file, mode)
    with pytest.raises(UsageError, match=r"chmod 600") as caught:
        LineWorksConfig.from_uri(h.uri(), h.env())
    assert f"{mode:04o}" in str(caught.value)


def test_credentials_file_is_read_and_must_be_private(h: Harness, tmp_path: Path) -> None:
    env = h.env()
    secret_file = tmp_path / "lw.env"
    secret_file.write_text(
        f"# app credentials\nLW_CLIENT_SECRET={env.pop('LW_CLIENT_SECRET')}\n", encoding="utf-8"
    )
    os.chmod(secret_file, 0o600)
    config = LineWorksConfig.from_uri(h.uri(credentials=secret_file), env)
    assert config.client_secret == h.credentials.client_secret
    os.chmod(secret_file, 0o644)
    with pytest.raises(UsageError, match="credentials file"):
        LineWorksConfig.from_uri(h.uri(credentials=secret_file), env)


def test_unknown_uri_options_and_paths_are_usage_errors(h: Harness) -> None:
    with pytest.raises(UsageError, match="unknown lineworks: URI option"):
        LineWorksConfig.from_uri("lineworks:?client_sercet=typo", h.env())
    with pytest.raises(UsageError, match="unexpected"):
        LineWorksConfig.from_uri("lineworks:somewhere", h.env())


# -- tokens ------------------------------------------------------------------------------------


def test_token_is_cached_and_renewed_before_expiry(tmp_path: Path) -> None:
    with emulated(tmp_path, limits=Limits(rate=200, window=1.0, token_lifetime=2.0)) as h:
        h.tenant.add_user(f"a@{D}")
        api = client(h)
        times = [0.0]
        api.tokens._clock = lambda: times[0]  # the token cache's view of time only
        try:
            for _ in range(3):
                api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
            assert api.tokens.issued == 1
            times[0] = 1.85  # within the renewal margin of a 2 s token
            api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
            assert api.tokens.issued == 2
        finally:
            api.close()


def test_a_401_fetches_one_new_token(h: Harness) -> None:
    api = client(h)
    try:
        api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
        h.emulator.tokens.clear()  # revoked on the server side
        api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
        assert api.tokens.issued == 2
    finally:
        api.close()


def test_a_refused_token_is_a_clear_error_without_the_secret(h: Harness) -> None:
    config = LineWorksConfig.from_uri(h.uri(), h.env(LW_CLIENT_SECRET="wrong-secret-value"))
    api = LineWorksClient(config)
    try:
        with pytest.raises(TenantError) as caught:
            api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
        assert "invalid_client" in str(caught.value) and "LW_CLIENT_SECRET" in str(caught.value)
        assert "wrong-secret-value" not in str(caught.value)
    finally:
        api.close()


# -- pagination, retries -----------------------------------------------------------------------


def test_pages_follow_cursors_percent_encoded(h: Harness) -> None:
    api = client(h)
    try:
        users = list(
            api.pages("/users", "GET /users", "users", {"domainId": "10000001", "count": 100})
        )
    finally:
        api.close()
    assert len(users) == 257 and len({u["email"] for u in users}) == 257
    assert h.emulator.count(200, "GET /users") == 3  # cursors hold + / = and round-trip


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_transient_failures_are_retried(h: Harness, kind: str) -> None:
    h.emulator.faults.append(Fault(kind, "GET /users", times=3))  # type: ignore[arg-type]
    api = client(h)
    try:
        reply = api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
    finally:
        api.close()
    assert reply.status == 200 and api.retries == 3


def test_a_slow_answer_times_out_and_is_retried(h: Harness) -> None:
    h.emulator.faults.append(Fault("slow", "GET /users", times=1, delay=0.6))
    api = client(h, timeout=0.2)
    try:
        assert (
            api.call("GET", "/users", "GET /users", params={"domainId": "10000001"}).status == 200
        )
    finally:
        api.close()
    assert api.retries == 1


def test_retries_stop_at_the_time_budget_with_a_clear_error(h: Harness) -> None:
    h.emulator.faults.append(Fault("500", "GET /users", times=10_000))
    api = client(h, max_retry_time=0.2)
    try:
        with pytest.raises(TenantError, match=r"gave up on GET /users after \d+ attempt"):
            api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
    finally:
        api.close()


def test_refusals_are_not_retried(h: Harness) -> None:
    api = client(h)
    try:
        with pytest.raises(ApiError) as caught:
            api.call(
                "POST",
                "/users/nobody%40example.co.jp/link-to-line",
                "POST /users/{userId}/link-to-line",
            )
    finally:
        api.close()
    assert (caught.value.status, caught.value.code, api.retries) == (404, "NOT_FOUND", 0)


def test_the_client_keeps_under_the_servers_rate(tmp_path: Path) -> None:
    # 60 requests through three windows of the server's limit, at exactly its rate.
    with emulated(tmp_path, limits=Limits(rate=20, window=0.2)) as h:
        h.tenant.add_user(f"a@{D}")
        api = client(h)
        try:
            for _ in range(60):
                api.call("GET", "/users", "GET /users", params={"domainId": "10000001"})
        finally:
            api.close()
        # 429s are the exception (network jitter at most), never the way the pace is found.
        assert h.emulator.count(200, "GET /users") == 60 and h.emulator.count(429) <= 2


def test_limiter_spaces_requests_and_holds_off_after_a_429() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(240, 60.0, margin=0.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(241):
        limiter.acquire()
    assert now[0] == pytest.approx(60.0)  # 240 intervals of 0.25 s: never 241 in a minute
    limiter.hold_off(5.0)
    limiter.acquire()
    assert now[0] == pytest.approx(65.0)

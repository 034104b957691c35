"""How the `lineworks:` provider reads refusals and paces itself (docs/lineworks.md).

Real HTTP to the emulator on 127.0.0.1: refusal classes (busy → retried, already → done,
typed refusals, unrecognised → verbatim), 403 UNAUTHORIZED refreshing the token, and a
limiter that follows rateLimit-* headers when another client shares the domain's budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator import Fault, Limits
from emulator.harness import Harness, emulated

from reconciler import workflow
from reconciler.desired import load_desired
from reconciler.errors import ChangesRefused
from reconciler.model import ChannelName
from reconciler.providers.lineworks import LineWorksConfig
from reconciler.providers.lineworks.client import LineWorksClient, RetryPolicy
from reconciler.providers.lineworks.refusals import Handling, classify
from reconciler.stopped import ApplyStopped
from reconciler.store.sqlite import SqliteStateStore

D = "example.co.jp"
LINE = ChannelName.LINE
LINK = "POST /users/{userId}/link-to-line"
UNLINK = "POST /users/{userId}/unlink-to-works"


def _desired(path: Path, members: list[str]) -> Path:
    path.write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    enabled: true\n"
        f"    members: {{policy: exact, include: [{', '.join(members)}]}}\n",
        encoding="utf-8",
    )
    return path


def _seeded(h: Harness, tmp_path: Path, *names: str) -> None:
    """LINE on with an empty list, attested; `names` in the directory."""
    for name in names:
        h.tenant.add_user(f"{name}@{D}", name.title())
    h.tenant.channels[LINE].enabled = True
    now = _desired(tmp_path / "now.yaml", [])
    provider = h.provider()
    try:
        provider.read()
        provider.attest(load_desired(now), "admin@example.co.jp")
    finally:
        provider.close()


def _apply(h: Harness, desired: Path, store_path: Path, **options: object) -> None:
    provider = h.provider(**options)
    try:
        with SqliteStateStore(store_path) as store:
            workflow.apply_plan(
                workflow.plan_file(desired, provider),
                provider,
                store,
                actor="ci@example",
                allow_destructive=True,
                manual="attested",
            )
    finally:
        provider.close()


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "status", "code", "text", "kind", "handling"),
    [
        (LINK, 400, "INVALID_PARAMETER", "already being granted or deleted", "busy", "retry"),
        (UNLINK, 400, "INVALID_PARAMETER", "already being granted or deleted", "busy", "retry"),
        (
            LINK,
            400,
            "INVALID_PARAMETER",
            "the member is already granted",
            "already_in_effect",
            "done",
        ),
        (LINK, 400, "INVALID_PARAMETER", "name contains an emoji", "name_rule", "refuse"),
        (LINK, 403, "FORBIDDEN", "", "all_members_mode", "refuse"),
        (LINK, 403, "FORBIDDEN", "the token has no scope for this", "missing_scope", "refuse"),
        (UNLINK, 404, "NOT_FOUND", "", "unknown_member", "refuse"),
        # The docs list no 400 for unlink: whatever it says, it is shown, never explained.
        (UNLINK, 400, "NOT_LINKED", "no permission", "unrecognised", "refuse"),
        (LINK, 400, "INVALID_PARAMETER", "quota of the day reached", "unrecognised", "refuse"),
    ],
)
def test_each_refusal_has_one_class(
    operation: str, status: int, code: str, text: str, kind: str, handling: str
) -> None:
    refusal = classify(operation, status, code, text, who=f"bob@{D}", channel="line")
    assert (refusal.kind, refusal.handling) == (kind, Handling(handling))
    assert refusal.reason().startswith(f"HTTP {status} {code}")  # the answer verbatim first
    assert bool(refusal.advice) == (kind not in ("unrecognised", "busy", "already_in_effect"))
    assert refusal.permanent == (
        kind in ("name_rule", "all_members_mode", "missing_scope", "unknown_member")
    )


# -- through the provider ------------------------------------------------------------------------


def test_a_member_still_being_granted_is_retried_until_it_clears(tmp_path: Path) -> None:
    with emulated(tmp_path, pending=0.3) as h:
        _seeded(h, tmp_path, "alice")
        # Someone else's grant of alice is in progress: the API answers "busy" for 0.3 s.
        assert h.tenant.link(LINE, f"alice@{D}", True).status == 202
        _apply(h, _desired(tmp_path / "d.yaml", [f"alice@{D}"]), tmp_path / "s.db")
        busy = [e for e in h.emulator.log if "link-to-line" in e.operation and e.status == 400]
        assert busy  # it was refused as busy, then retried: no manual step was asked for
        assert h.tenant.snapshot().channels[LINE].members == {f"alice@{D}"}


def test_an_unrecognised_refusal_is_shown_verbatim_without_advice(tmp_path: Path) -> None:
    with emulated(tmp_path) as h:
        _seeded(h, tmp_path, "bob")
        h.emulator.faults.append(
            Fault("refuse", "link-to-line", description="daily quota of grants reached")
        )
        with pytest.raises(ApplyStopped) as caught:
            _apply(h, _desired(tmp_path / "d.yaml", [f"bob@{D}"]), tmp_path / "s.db")
        assert isinstance(caught.value.cause, ChangesRefused)
        (refused,) = caught.value.result.refused
        assert not refused.permanent  # unrecognised: no guess that trying again cannot help
        message = str(caught.value)
        assert "HTTP 400 INVALID_PARAMETER: daily quota of grants reached" in message
        assert "emoji" not in message and "console instead" not in message


def test_the_name_rule_is_a_permanent_refusal_with_the_console_step(tmp_path: Path) -> None:
    with emulated(tmp_path) as h:
        _seeded(h, tmp_path, "caroline")  # "line" in the login ID (documented rule)
        with pytest.raises(ApplyStopped) as caught:
            _apply(h, _desired(tmp_path / "d.yaml", [f"caroline@{D}"]), tmp_path / "s.db")
        assert isinstance(caught.value.cause, ChangesRefused)
        (refused,) = caught.value.result.refused
        assert refused.permanent
        assert "emoji" in refused.reason and "Connected-members > Manage" in refused.reason


# -- tokens ------------------------------------------------------------------------------------


def test_403_unauthorized_refreshes_the_token_once_like_401(tmp_path: Path) -> None:
    with emulated(tmp_path, limits=Limits(rate=200, window=1.0, expired_status=403)) as h:
        h.tenant.add_user(f"a@{D}")
        config = LineWorksConfig.from_uri(h.uri(), h.env())
        client = LineWorksClient(config, retry=RetryPolicy(base=0.01, cap=0.1, max_time=5))
        try:
            params = {"domainId": "10000001"}
            client.call("GET", "/users", "GET /users", params=params)
            h.emulator.tokens.clear()  # the token expired early on the server's side
            assert client.call("GET", "/users", "GET /users", params=params).status == 200
            assert client.tokens.issued == 2 and h.emulator.count(403) == 1
        finally:
            client.close()


# -- pacing --------------------------------------------------------------------------------------


def test_another_client_on_the_domain_costs_few_429s(tmp_path: Path) -> None:
    # The domain's budget is 40 per 1 s; another app spends 24 of them on link-to-line. (At
    # 0.2 s windows a slot, 12 ms, was shorter than a loaded machine's round trip.)
    limits = Limits(rate=40, window=1.0, neighbour=24, neighbour_match="link-to-line")
    with emulated(tmp_path, limits=limits) as h:
        names = [f"m{i:03d}" for i in range(48)]
        _seeded(h, tmp_path, *names)
        _apply(h, _desired(tmp_path / "d.yaml", [f"{n}@{D}" for n in names]), tmp_path / "s.db")
        assert len(h.tenant.snapshot().channels[LINE].members) == 48
        # The rateLimit-remaining/-reset headers told lwr what the other client left it.
        assert h.emulator.count(429, "link-to-line") <= 3


def test_the_limiter_spreads_what_the_window_has_left_and_backs_off_after_429s() -> None:
    from reconciler.providers.lineworks.limiter import RateLimiter

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(240, 60.0, margin=0.0, clock=lambda: now[0], sleep=sleep)
    limiter.acquire()
    # Others left 10 requests in the 5 s before the reset: one per 0.5 s, not per 0.25 s.
    limiter.observe({"ratelimit-remaining": "10", "ratelimit-reset": "5"})
    limiter.acquire()
    assert now[0] == pytest.approx(0.5)
    limiter.observe({"ratelimit-remaining": "0", "ratelimit-reset": "3"})
    limiter.acquire()
    assert now[0] == pytest.approx(3.5)  # nothing left: wait for the reset
    for _ in range(5):  # a storm within one window is one congestion signal
        limiter.throttle(0.0)
    assert limiter.share == pytest.approx(0.75) and limiter.throttled == 5
    assert limiter.interval == pytest.approx(0.25 / 0.75)
    now[0] += 60.0
    limiter.observe({})  # a window without a 429: the share climbs back
    assert limiter.share == pytest.approx(0.85)

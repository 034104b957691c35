"""Shared builders for tenant and desired states used across the planner and CLI tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pgserver import PgServer, find_bindir

from reconciler.model import (
    ChannelName,
    ChannelState,
    DesiredChannel,
    DesiredState,
    GreetingSpec,
    MembersSpec,
    SafetySettings,
    TenantState,
)

DOMAIN = "example.co.jp"
LINE = ChannelName.LINE
LW = ChannelName.LINEWORKS


def emails(*names: str) -> frozenset[str]:
    """`alice` → alice@example.co.jp."""
    return frozenset(f"{n}@{DOMAIN}" for n in names)


def channel_state(channel: ChannelName = LINE, **kw: Any) -> ChannelState:
    """A channel that is on, listed mode, nothing restricted, unless told otherwise."""
    base: dict[str, Any] = {
        "enabled": True, "all_members": False, "members": frozenset(),
        "auto_grant_new_members": False, "restrict_file_transfer": False,
        "greeting_enabled": False if channel is LINE else None,
        "greeting_message": "" if channel is LINE else None,
        "open_rooms": {},
    }
    base.update(kw)
    return ChannelState(**base)


def tenant(directory: frozenset[str], line: ChannelState | None = None,
           lineworks: ChannelState | None = None) -> TenantState:
    """A tenant with both channels (defaults: on, empty lists)."""
    return TenantState(DOMAIN, directory, {
        LINE: line or channel_state(LINE),
        LW: lineworks or channel_state(LW),
    })


def desired(line: DesiredChannel | None = None, lineworks: DesiredChannel | None = None,
            safety: SafetySettings | None = None) -> DesiredState:
    """A desired state managing only the channels given."""
    channels = {}
    if line is not None:
        channels[LINE] = line
    if lineworks is not None:
        channels[LW] = lineworks
    return DesiredState(1, DOMAIN, channels, safety or SafetySettings())


def listed(*names: str, policy: str = "exact") -> MembersSpec:
    """members: {policy, include}."""
    return MembersSpec(False, policy, emails(*names))  # type: ignore[arg-type]


ALL = MembersSpec(True)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A seeded demo tenant in tmp_path, the default for every command (LWR_TENANT)."""
    from reconciler.cli import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    monkeypatch.delenv("LWR_STATE", raising=False)
    assert run(["tenant", "init", "--demo"]) == 0
    return tmp_path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL for the whole session, where the role `lwr` owns the database `lwr`.

    LWR_TEST_POSTGRES_URL points at a server the developer runs (connect as `lwr` there too);
    otherwise a throwaway server starts from the installed binaries (tests/pgserver.py) the first
    time a test asks for this fixture, and stops at the end of the session.
    """
    external = os.environ.get("LWR_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    bindir = find_bindir()
    if bindir is None:
        why = ("PostgreSQL binaries not found (install the Debian package postgresql, "
               "or set LWR_PG_BINDIR / LWR_TEST_POSTGRES_URL)")
        if os.environ.get("LWR_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LWR_REQUIRE_POSTGRES=1 but {why}", pytrace=False)
        pytest.skip(why)
    server = PgServer.start(bindir)
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def pg_state(postgres_url: str) -> str:
    """A migrated, empty PostgreSQL state of this test's own (a fresh `?schema=`)."""
    import secrets

    from reconciler.store.postgres import migrate

    url = f"{postgres_url}?schema=t_{secrets.token_hex(6)}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def state_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The --state of a test run once per backend: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"local:{tmp_path}/state/state.db"
    return str(request.getfixturevalue("pg_state"))


@pytest.fixture
def demo_state(demo: Path, state_uri: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo tenant with its state in each backend in turn (LWR_STATE=state_uri)."""
    monkeypatch.setenv("LWR_STATE", state_uri)
    return demo


__all__ = ["ALL", "DOMAIN", "LINE", "LW", "DesiredChannel", "GreetingSpec", "channel_state",
           "desired", "emails", "listed", "tenant"]

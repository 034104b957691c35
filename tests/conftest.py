"""Fixtures shared by the tests (builders of states are in builders.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import PgServer, find_bindir


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The demo tenant's file as `lwr tenant init --demo` (the real command) makes it, once
    per session: a file names no path of its own, so each test gets a copy."""
    from reconciler.cli import run

    path = tmp_path_factory.mktemp("demo") / "tenant.db"
    assert run(["tenant", "init", "--demo", "--tenant", f"local:{path}"]) == 0
    assert not path.with_name("tenant.db-wal").exists()  # closed: the file holds it all
    return path.read_bytes()


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_file: bytes) -> Path:
    """A seeded demo tenant in tmp_path, the default for every command (LWR_TENANT)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    monkeypatch.delenv("LWR_STATE", raising=False)
    # Owner-only from its first byte, as lwr creates it (tests/test_sqlite_files.py).
    fd = os.open(tmp_path / "tenant.db", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(demo_file)
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
        why = (
            "PostgreSQL binaries not found (install the Debian package postgresql, "
            "or set LWR_PG_BINDIR / LWR_TEST_POSTGRES_URL)"
        )
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

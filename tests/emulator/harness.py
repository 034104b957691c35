"""Test and bench wiring: an emulator, credentials, and `lineworks:` providers pointed at it.

Limits are scaled (hundreds of requests per second) so a whole apply takes well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from emulator.server import Credentials, Emulator, Limits, make_credentials
from emulator.tenant import EmulatedTenant
from reconciler.desired import load_desired
from reconciler.export import dump_yaml, export_document
from reconciler.manual import ManualStep
from reconciler.model import TenantState
from reconciler.providers.lineworks import LineWorksConfig, LineWorksTenant
from reconciler.providers.lineworks.client import LineWorksClient, RetryPolicy

FAST = Limits(rate=200, window=1.0)
#: The scope a tenant URI needs to read org units and groups besides the member links.
CHART_SCOPE = "user,orgunit.read,group.read"
#: FAST with the status resource the docs never describe (202 answers name a `Location`).
POLLED = Limits(rate=200, window=1.0, status_location=True)


@dataclass
class Harness:
    """One running emulator and what lwr needs to reach it."""

    emulator: Emulator
    credentials: Credentials
    state_dir: Path

    @property
    def tenant(self) -> EmulatedTenant:
        """The emulated domain (its console, for the admin's side of manual steps)."""
        return self.emulator.tenant

    def uri(self, **options: object) -> str:
        """A lineworks: URI with the emulator's rate and a private state dir."""
        query: dict[str, object] = {
            "rate": self.emulator.limits.rate,
            "rate_window": self.emulator.limits.window,
            "state_dir": self.state_dir,
            "timeout": 5,
            "max_retry_time": 10,
            "poll_timeout": 5,
        }
        query.update(options)
        return "lineworks:?" + urlencode({k: str(v) for k, v in query.items()})

    def env(self, **extra: str) -> dict[str, str]:
        """LW_* variables with the test app's credentials."""
        return self.credentials.env(self.emulator, **extra)

    def aim(self, monkeypatch: pytest.MonkeyPatch, cwd: Path, **options: object) -> None:
        """Point `lwr` run in this test (`reconciler.cli.run`) at the emulator: from `cwd`,
        with the app's LW_* credentials and `uri(**options)` as LWR_TENANT, no LWR_STATE."""
        monkeypatch.chdir(cwd)
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("LWR_TENANT", self.uri(**options))
        monkeypatch.delenv("LWR_STATE", raising=False)

    def provider(self, *, retry_base: float = 0.01, **options: object) -> LineWorksTenant:
        """A provider on the emulator with quick backoff (the budget stays as configured)."""
        config = LineWorksConfig.from_uri(self.uri(**options), self.env())
        client = LineWorksClient(
            config, retry=RetryPolicy(base=retry_base, cap=0.2, max_time=config.max_retry_time)
        )
        return LineWorksTenant(config, client=client)

    def admin(self, step: ManualStep) -> bool:
        """The admin does the step in the console, then confirms it."""
        self.tenant.console_apply(step.change)
        return True

    def attest_state(self, state: TenantState, directory: Path) -> None:
        """Bootstrap: the admin attests the console's current state (as `lwr attest`)."""
        path = directory / "console-now.yaml"
        path.write_text(dump_yaml(export_document(state)), encoding="utf-8")
        provider = self.provider()
        try:
            provider.read()
            provider.attest(load_desired(path), "admin@example.co.jp")
        finally:
            provider.close()


@contextmanager
def emulated(
    directory: Path,
    state: TenantState | None = None,
    *,
    limits: Limits | None = None,
    pending: float = 0.0,
    bulk_pending: float = 0.02,
    attest: bool = True,
    departments: bool = False,
) -> Iterator[Harness]:
    """An emulator seeded with `state` (attested as the starting point unless told not to);
    `departments`: with the demo company's org units and groups over its members."""
    tenant = EmulatedTenant(pending=pending, bulk_pending=bulk_pending)
    if state is not None:
        tenant.seed(state)
    if departments:
        tenant.seed_departments()
    credentials = make_credentials(directory / "app")
    with Emulator(tenant, credentials, limits or FAST) as emulator:
        harness = Harness(emulator, credentials, directory / "lwr-state")
        if state is not None and attest:
            harness.attest_state(state, directory)
        yield harness

"""Builders of tenant and desired states shared by the planner, render and CLI tests."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.cli import run
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
from reconciler.orgchart import Group, OrgChart, OrgUnit
from reconciler.providers.local import DEFAULT_DOMAIN

DOMAIN = DEFAULT_DOMAIN
LINE = ChannelName.LINE
LW = ChannelName.LINEWORKS


def emails(*names: str) -> frozenset[str]:
    """`alice` → alice@example.co.jp."""
    return frozenset(f"{n}@{DOMAIN}" for n in names)


def channel_state(channel: ChannelName = LINE, **kw: Any) -> ChannelState:
    """A channel that is on, listed mode, nothing restricted, unless told otherwise."""
    base: dict[str, Any] = {
        "enabled": True,
        "all_members": False,
        "members": frozenset(),
        "auto_grant_new_members": False,
        "restrict_file_transfer": False,
        "greeting_enabled": False if channel is LINE else None,
        "greeting_message": "" if channel is LINE else None,
        "open_rooms": {},
    }
    base.update(kw)
    return ChannelState(**base)


def tenant(
    directory: frozenset[str],
    line: ChannelState | None = None,
    lineworks: ChannelState | None = None,
) -> TenantState:
    """A tenant with both channels (defaults: on, empty lists)."""
    return TenantState(
        DOMAIN,
        directory,
        {
            LINE: line or channel_state(LINE),
            LW: lineworks or channel_state(LW),
        },
    )


def desired(
    line: DesiredChannel | None = None,
    lineworks: DesiredChannel | None = None,
    safety: SafetySettings | None = None,
) -> DesiredState:
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


__all__ = [
    "ALL",
    "DOMAIN",
    "LINE",
    "LW",
    "DesiredChannel",
    "GreetingSpec",
    "channel_state",
    "desired",
    "emails",
    "listed",
    "tenant",
]


def seed_demo(tenant_uri: str, domain: str = DOMAIN) -> None:
    """`lwr tenant init --demo --domain DOMAIN --tenant URI`, through the real CLI."""
    from reconciler.cli import run

    assert run(["tenant", "init", "--demo", "--domain", domain, "--tenant", tenant_uri]) == 0


def org_chart(
    units: dict[str, tuple[str | None, frozenset[str]]],
    groups: dict[str, frozenset[str]] | None = None,
) -> OrgChart:
    """An org chart from `{path: (parent path, direct members)}` and `{group: members}`;
    a unit's name is its path's last part, its id its path."""
    return OrgChart(
        units={p: OrgUnit(p, p.rsplit("/", 1)[-1], parent) for p, (parent, _) in units.items()},
        unit_members={p: members for p, (_, members) in units.items()},
        groups={name: Group(f"g-{name}", name, m) for name, m in (groups or {}).items()},
    )


#: A desired file for the demo company: 営業部 (its sub-units too) on the LINE list, heidi never.
SALES_SELECTORS = """\
version: 1
tenant: example.co.jp
external_messaging:
  line:
    enabled: true
    members:
      policy: exact
      include_orgunits: [営業部]
      exclude: [heidi@example.co.jp]
"""


def lwr_output(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `lwr ARGS` in process; its exit code and what it printed (stdout, then stderr)."""
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err

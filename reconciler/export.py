"""Tenant state → a desired-state document that plans to zero changes against that tenant;
and the tenant state as `lwr show --format json` prints it.

Writes UTF-8 YAML with Japanese text as is and multi-line greetings as literal blocks.
"""

from __future__ import annotations

from typing import Any

import yaml

from reconciler import settings
from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.model import ChannelName, ChannelState, TenantState
from reconciler.orgchart import OrgChart
from reconciler.providers.base import Provider
from reconciler.settings import ENABLED, MEMBERS_MODE

#: The editor hint's first line; `{}` is where the schema is, relative to the file
#: (`lwr export --schema-out`, README "Editor support").
SCHEMA_HINT = "# yaml-language-server: $schema={}\n"


def export_document(state: TenantState, chart: OrgChart | None = None) -> dict[str, Any]:
    """Every managed key of the tenant, as the file format says it; with the tenant's org
    `chart`, an org-unit selector wherever a whole unit is on a list (`--selectors`)."""
    return {
        "version": 1,
        "tenant": state.domain,
        "external_messaging": {
            channel.value: _channel(channel, state.channels[channel], state.directory, chart)
            for channel in ChannelName
        },
    }


def _channel(
    channel: ChannelName, ch: ChannelState, directory: frozenset[str], chart: OrgChart | None
) -> dict[str, Any]:
    if not ch.enabled:
        # Off: the console keeps the list and settings but none can be managed (docs/domain.md).
        return {ENABLED.key: False}
    doc = settings.values(channel, ch, skip=(MEMBERS_MODE,), defaults=True)
    # The mode and the list are one key in the file.
    doc[MEMBERS_MODE.key] = "all" if ch.all_members else _listed(ch.members, directory, chart)
    return doc


def _listed(
    members: frozenset[str], directory: frozenset[str], chart: OrgChart | None
) -> dict[str, Any]:
    if chart is None:
        return {"policy": "exact", "include": sorted(members)}
    from reconciler.selectors import covering_units  # only for --selectors

    units, rest = covering_units(members, chart, directory)
    if not units:
        return {"policy": "exact", "include": sorted(members)}
    return {"policy": "exact", "include": sorted(rest), "include_orgunits": units}


# libyaml's emitter when present: a 1M-member list dumps several times faster.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block style, literal blocks for multi-line text, keys in the order written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(document: dict[str, Any], schema: str | None = None) -> str:
    """YAML text for a desired-state document (allow_unicode: no \\u escapes); with `schema`
    (a path relative to the file, or a URL), an editor hint pointing there first."""
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
    return (SCHEMA_HINT.format(schema) if schema else "") + body


def export_yaml(provider: Provider, schema: str | None = None, *, selectors: bool = False) -> str:
    """The tenant as a desired-state file that plans to zero changes; `schema`: where its
    editor hint points (relative to the file), none without; `selectors`: org units wholly
    on a list written as `include_orgunits`, the rest as emails."""
    state = provider.read()
    if not selectors:
        return dump_yaml(export_document(state), schema)
    if not provider.READS_ORG_CHART:
        kind = provider.key.partition(":")[0]
        raise UsageError(
            Said.of(
                "a {kind}: tenant ({tenant}) cannot read its org chart",
                kind=kind,
                tenant=provider.key,
            )
        )
    return dump_yaml(export_document(state, provider.org_chart()), schema)


def state_json(state: TenantState) -> dict[str, Any]:
    """`lwr show --format json`: the state with sorted lists."""
    return {
        "tenant": state.domain,
        "directory_size": len(state.directory),
        "channels": {
            name.value: {
                ENABLED.key: ch.enabled,
                "members_mode": MEMBERS_MODE.current(ch),
                **settings.values(name, ch, skip=(ENABLED, MEMBERS_MODE)),
                "members": sorted(ch.members),
                "open_rooms": ch.open_room_total,
            }
            for name, ch in state.channels.items()
        },
    }

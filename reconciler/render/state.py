"""The view of a tenant's state (`lwr show`, text): each channel's settings and members, with
where a value came from when it was not read (a lineworks: tenant's attested state)."""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.manual import label
from reconciler.model import ChannelName, TenantState
from reconciler.orgchart import OrgChart
from reconciler.settings import TOGGLES
from reconciler.terminal import printable
from reconciler.words import onoff, plural

__all__ = ["org_chart_json", "org_chart_text", "state_text"]


def state_text(
    state: TenantState, key: str, shown: int = 20, origin: dict[str, str] | None = None
) -> str:
    """`lwr show`: the tenant `key`, its channels and (up to `shown` of) each list; `origin`
    is the provider's provenance; every value made printable."""
    return printable(_show_text(state, key, shown, origin))


def _show_text(
    state: TenantState, key: str, shown: int = 20, origin: dict[str, str] | None = None
) -> str:
    def src(name: ChannelName, *fields: str) -> str:
        labels = {label(origin.get(f"{name.value}.{f}", "")) for f in fields} if origin else {""}
        return f"  ({', '.join(sorted(labels))})" if labels - {""} else ""

    lines = [f"Tenant {state.domain} ({key}): {plural(len(state.directory), 'member')}", ""]
    for name in ChannelName:
        ch = state.channels[name]
        lines.append(f"{name.value} — {name.label}: {onoff(ch.enabled)}" + src(name, "enabled"))
        lines += [f"  {s.key}: {onoff(s.current(ch))}" + src(name, s.attr) for s in TOGGLES]
        if ch.greeting_enabled is not None:
            lines.append(
                f"  greeting: {onoff(ch.greeting_enabled)} "
                f"{json.dumps(ch.greeting_message or '', ensure_ascii=False)}"
                + src(name, "greeting_enabled", "greeting_message")
            )
        if ch.all_members:
            lines.append(f"  members: all ({len(ch.members)})" + src(name, "all_members"))
        else:
            listed = sorted(ch.members)
            more = f", … and {len(listed) - shown} more" if len(listed) > shown else ""
            lines.append(
                f"  members: {len(listed)} listed"
                + (f" ({', '.join(listed[:shown])}{more})" if listed else "")
                + src(name, "members")
            )
        lines.append(
            f"  open rooms with {name.external}: {ch.open_room_total}"
            + ("  (not readable)" if origin else "")
        )
    return "\n".join(lines) + "\n"


def org_chart_text(chart: OrgChart) -> str:
    """`lwr show --org-chart`: each unit, indented under its parent, with its members (its
    sub-units' included) and groups with theirs; every name made printable."""
    lines = [
        f"Org chart: {plural(len(chart.units), 'org unit')}, {plural(len(chart.groups), 'group')}"
    ]
    for uid, depth in _tree(chart):
        under, direct = len(chart.members_under(uid)), len(chart.unit_members.get(uid, ()))
        own = f" ({direct} directly)" if direct != under else ""
        lines.append(f"{'  ' * (depth + 1)}{chart.units[uid].name}: {plural(under, 'member')}{own}")
    lines += [
        f"  group {name}: {plural(len(chart.groups[name].members), 'member')}"
        for name in sorted(chart.groups)
    ]
    return printable("\n".join(lines) + "\n")


def org_chart_json(chart: OrgChart) -> dict[str, object]:
    """The org chart's summary for `lwr show --org-chart --format json`: counts, no emails."""
    return {
        "org_units": [
            {
                "id": uid,
                "path": chart.path(uid),
                "members": len(chart.members_under(uid)),
                "direct_members": len(chart.unit_members.get(uid, ())),
            }
            for uid, _ in _tree(chart)
        ],
        "groups": [
            {"name": name, "members": len(chart.groups[name].members)}
            for name in sorted(chart.groups)
        ],
    }


def _tree(chart: OrgChart) -> list[tuple[str, int]]:
    """Every unit with its depth, parents before children, siblings by name."""
    children: dict[str | None, list[str]] = {}
    for unit in chart.units.values():
        parent = unit.parent_id if unit.parent_id in chart.units else None
        children.setdefault(parent, []).append(unit.id)
    found: list[tuple[str, int]] = []
    seen: set[str] = set()
    stack = [(uid, 0) for uid in sorted(children.get(None, ()), key=_by_name(chart), reverse=True)]
    while stack:
        uid, depth = stack.pop()
        if uid in seen:  # a cycle in a broken directory: each unit once
            continue
        seen.add(uid)
        found.append((uid, depth))
        below = sorted(children.get(uid, ()), key=_by_name(chart), reverse=True)
        stack += [(child, depth + 1) for child in below]
    return found


def _by_name(chart: OrgChart) -> Callable[[str], tuple[str, str]]:
    return lambda uid: (chart.units[uid].name, uid)

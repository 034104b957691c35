"""The view of a tenant's state (`lwr show`, text): each channel's settings and members, with
where a value came from when it was not read (a lineworks: tenant's attested state). In the
reader's language; keys stay the desired file's keys, values and names are never translated."""

from __future__ import annotations

import json

from reconciler.i18n import ENGLISH, Messages
from reconciler.manual import label
from reconciler.model import ChannelName, ChannelState, TenantState
from reconciler.orgchart import OrgChart
from reconciler.settings import TOGGLES
from reconciler.terminal import printable

__all__ = ["org_chart_json", "org_chart_text", "origin_label", "state_text"]


def state_text(
    state: TenantState,
    key: str,
    shown: int = 20,
    origin: dict[str, str] | None = None,
    t: Messages = ENGLISH,
) -> str:
    """`lwr show`: the tenant `key`, its channels and (up to `shown` of) each list; `origin`
    is the provider's provenance; every value made printable."""
    return printable(_show_text(state, key, shown, origin, t))


def origin_label(source: str, t: Messages = ENGLISH) -> str:
    """How a value's origin reads next to it in `show`, in `t`'s language ('' for read)."""
    words = label(source)
    return t._(words) if words else ""


def _onoff(value: bool | None, t: Messages) -> str:
    return t._("on") if value else t._("off")


def _show_text(
    state: TenantState, key: str, shown: int, origin: dict[str, str] | None, t: Messages
) -> str:
    def src(name: ChannelName, *fields: str) -> str:
        if not origin:
            return ""
        labels = {origin_label(origin.get(f"{name.value}.{f}", ""), t) for f in fields} - {""}
        return t._("  ({origins})", origins=t._(", ").join(sorted(labels))) if labels else ""

    members = t.n_("{n} member", "{n} members", len(state.directory))
    lines = [
        t._("Tenant {tenant} ({uri}): {members}", tenant=state.domain, uri=key, members=members)
    ]
    lines.append("")
    for name in ChannelName:
        ch = state.channels[name]
        fields = {"channel": name.value, "label": t._(name.label)}
        head = (
            t._("{channel} — {label}: on", **fields)
            if ch.enabled
            else t._("{channel} — {label}: off", **fields)
        )
        lines.append(head + src(name, "enabled"))
        lines += [f"  {s.key}: {_onoff(s.current(ch), t)}" + src(name, s.attr) for s in TOGGLES]
        if ch.greeting_enabled is not None:
            message = json.dumps(ch.greeting_message or "", ensure_ascii=False)
            lines.append(
                f"  greeting: {_onoff(ch.greeting_enabled, t)} {message}"
                + src(name, "greeting_enabled", "greeting_message")
            )
        lines.append(
            _members(ch, shown, t) + src(name, "members" if not ch.all_members else "all_members")
        )
        rooms = t._(
            "  open rooms with {external}: {n}", external=t._(name.external), n=ch.open_room_total
        )
        lines.append(rooms + (t._("  (not readable)") if origin else ""))
    return "\n".join(lines) + "\n"


def _members(ch: ChannelState, shown: int, t: Messages) -> str:
    if ch.all_members:
        return t._("  members: all ({n})", n=len(ch.members))
    listed = sorted(ch.members)
    if not listed:
        return t._("  members: {n} listed", n=0)
    names = t._(", ").join(listed[:shown])
    if len(listed) > shown:
        names += t._(", … and {n:,} more", n=len(listed) - shown)
    return t._("  members: {n} listed ({names})", n=len(listed), names=names)


def org_chart_text(chart: OrgChart, t: Messages = ENGLISH) -> str:
    """`lwr show --org-chart`: each unit, indented under its parent, with its members (its
    sub-units' included) and groups with theirs; every name made printable."""
    units = t.n_("{n} org unit", "{n} org units", len(chart.units))
    groups = t.n_("{n} group", "{n} groups", len(chart.groups))
    lines = [t._("Org chart: {units}, {groups}", units=units, groups=groups)]
    for uid, depth in chart.tree():
        under, direct = len(chart.members_under(uid)), len(chart.unit_members.get(uid, ()))
        own = t._(" ({n} directly)", n=direct) if direct != under else ""
        count = t.n_("{n} member", "{n} members", under)
        lines.append(f"{'  ' * (depth + 1)}{chart.units[uid].name}: {count}{own}")
    lines += [
        t._(
            "  group {name}: {count}",
            name=name,
            count=t.n_("{n} member", "{n} members", len(chart.groups[name].members)),
        )
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
            for uid, _ in chart.tree()
        ],
        "groups": [
            {"name": name, "members": len(chart.groups[name].members)}
            for name in sorted(chart.groups)
        ],
    }

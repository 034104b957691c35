"""The view of a tenant's state (`lwr show`, text): each channel's settings and members, with
where a value came from when it was not read (a lineworks: tenant's attested state)."""

from __future__ import annotations

import json

from reconciler.manual import label
from reconciler.model import ChannelName, TenantState
from reconciler.terminal import printable

__all__ = ["state_text"]


def state_text(state: TenantState, key: str, shown: int = 20,
               origin: dict[str, str] | None = None) -> str:
    """`lwr show`: the tenant `key`, its channels and (up to `shown` of) each list; `origin`
    is the provider's provenance; every value made printable."""
    return printable(_show_text(state, key, shown, origin))


def _show_text(state: TenantState, key: str, shown: int = 20,
               origin: dict[str, str] | None = None) -> str:
    def src(name: ChannelName, *fields: str) -> str:
        labels = {label(origin.get(f"{name.value}.{f}", "")) for f in fields} if origin else {""}
        return f"  ({', '.join(sorted(labels))})" if labels - {""} else ""

    lines = [f"Tenant {state.domain} ({key}): {len(state.directory)} members", ""]
    for name in ChannelName:
        ch = state.channels[name]
        lines.append(f"{name.value} — {name.label}: {'on' if ch.enabled else 'off'}"
                     + src(name, "enabled"))
        lines.append(f"  auto_grant_new_members: {_onoff(ch.auto_grant_new_members)}"
                     + src(name, "auto_grant_new_members"))
        lines.append(f"  restrict_file_transfer: {_onoff(ch.restrict_file_transfer)}"
                     + src(name, "restrict_file_transfer"))
        if ch.greeting_enabled is not None:
            lines.append(f"  greeting: {_onoff(ch.greeting_enabled)} "
                         f"{json.dumps(ch.greeting_message or '', ensure_ascii=False)}"
                         + src(name, "greeting_enabled", "greeting_message"))
        if ch.all_members:
            lines.append(f"  members: all ({len(ch.members)})" + src(name, "all_members"))
        else:
            listed = sorted(ch.members)
            more = f", … and {len(listed) - shown} more" if len(listed) > shown else ""
            lines.append(f"  members: {len(listed)} listed"
                         + (f" ({', '.join(listed[:shown])}{more})" if listed else "")
                         + src(name, "members"))
        lines.append(f"  open rooms with {name.external}: {ch.open_room_total}"
                     + ("  (not readable)" if origin else ""))
    return "\n".join(lines) + "\n"


def _onoff(value: bool | None) -> str:
    return "on" if value else "off"

"""The view of a tenant's state (`lwr show`, text): each channel's settings and members, with
where a value came from when it was not read (a lineworks: tenant's attested state)."""

from __future__ import annotations

import json

from reconciler.manual import label
from reconciler.model import ChannelName, TenantState
from reconciler.settings import TOGGLES
from reconciler.terminal import printable
from reconciler.words import onoff, plural

__all__ = ["state_text"]


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

"""A channel of a `lineworks:` tenant as lwr knows it: attested or applied values, else defaults.

No public API reads the settings or the lists, so the provider builds each channel from the
attested state (store/attested.py) and says where every value came from.
"""

from __future__ import annotations

from typing import Any

from reconciler.model import ChannelName, ChannelState
from reconciler.settings import SETTINGS, Setting
from reconciler.store.attested import MEMBERS, ChannelKnowledge

__all__ = ["channel_state"]

# The console's defaults, assumed for values never attested.
_DEFAULTS: dict[str, Any] = {s.attr: s.default for s in SETTINGS}


def channel_state(
    channel: ChannelName,
    known: ChannelKnowledge,
    directory: frozenset[str],
    provenance: dict[str, str],
) -> ChannelState:
    """One channel as lwr knows it: each setting attested, applied or the console's default
    (recording in `provenance` where each came from), the list within the directory."""

    def value(field: str) -> Any:
        fact = known.facts.get(field)
        provenance[f"{channel.value}.{field}"] = fact.source if fact else "unknown"
        return fact.value if fact else _DEFAULTS[field]

    # Every row of the settings table, as the model holds it; None where the channel
    # has no such setting (the greeting is LINE's only).
    facts: dict[str, Any] = {
        row.attr: (_typed(row, value(row.attr)) if channel in row.channels else None)
        for row in SETTINGS
    }
    members_fact = known.facts.get(MEMBERS)
    if facts["all_members"]:  # the list follows the mode: it is the directory
        origin = provenance[f"{channel.value}.all_members"]
    else:
        origin = members_fact.source if members_fact else "applied" if known.members else "unknown"
    provenance[f"{channel.value}.members"] = origin
    return ChannelState(
        **facts,
        # In "all members" mode the list is the directory, as the console shows it.
        members=directory if facts["all_members"] else known.members & directory,
        open_rooms={},  # room lists are not readable: side-effect counts show 0
    )


def _typed(row: Setting, value: Any) -> bool | str:
    return str(value) if row.on is None else bool(value)

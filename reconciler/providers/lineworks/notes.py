"""What a `lineworks:` plan tells its reviewer: values not read, defaults assumed, API time.

The time note uses estimate.py's model, the one apply's ETA uses too: the APIs of a phase run
side by side, so a phase lasts as long as its slowest API at the pace in force.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.actions import Change
from reconciler.i18n import Messages, Msg, Said, Told
from reconciler.model import ChannelName, DesiredChannel, DesiredState
from reconciler.providers.base import CONSOLE_PAGE
from reconciler.providers.lineworks.estimate import ALL_MEMBERS, Estimate, directory_pages
from reconciler.providers.lineworks.orgunits import ChartCost
from reconciler.settings import Setting, of
from reconciler.words import duration_msg

__all__ = ["attestable", "plan_notes"]


def plan_notes(
    provenance: Mapping[str, str],
    desired: DesiredState,
    changes: Sequence[Change],
    est: Estimate,
    members: int,
    *,
    chart: ChartCost | None = None,
) -> tuple[str, ...]:
    """Which compared values were not read, what is assumed, and how long the API takes;
    `members`: the directory's size (what re-reading it costs); `chart`: what reading the
    org chart cost, when the file's member selectors needed it. Each note is a Said: the
    plan's JSON keeps the English, a renderer says it in its reader's language."""
    notes: list[Msg] = []
    origins: dict[str, list[str]] = {}
    for key in _managed_keys(desired):
        origins.setdefault(provenance.get(key, "unknown"), []).append(key)
    if origins.get("attested") or origins.get("applied"):
        keys = sorted(origins.get("attested", []) + origins.get("applied", []))
        notes.append(
            Msg.of(
                "lineworks: no public API reads these, so the plan compares the file with "
                "lwr's attested state (attested, not read): {keys}",
                keys=", ".join(keys),
            )
        )
    if origins.get("unknown"):
        notes.append(
            Msg.of(
                "lineworks: never read nor attested, the console default is assumed (off, "
                "empty list): {keys}. Check {page} and record what it shows with "
                "`lwr attest FILE`",
                keys=", ".join(sorted(origins["unknown"])),
                page=Msg.of(CONSOLE_PAGE),
            )
        )
    if chart is not None:
        notes.append(
            Msg.counted(
                "lineworks: org units and groups (for the member selectors): "
                "{n:,} request, ≈ {took}",
                "lineworks: org units and groups (for the member selectors): "
                "{n:,} requests, ≈ {took}",
                chart.requests,
                took=duration_msg(chart.seconds, fractions=True),
            )
        )
    if est.total:
        notes.append(_timing(est, members))
    manual = sum(1 for c in changes if c.execution == "manual")
    if manual:
        notes.append(
            Msg.counted(
                "lineworks: {n} manual step: apply prints a checklist and waits for an admin "
                "to confirm each (non-interactive: --manual=attested or --manual=skip)",
                "lineworks: {n} manual steps: apply prints a checklist and waits for an admin "
                "to confirm each (non-interactive: --manual=attested or --manual=skip)",
                manual,
            )
        )
    return tuple(Said(note) for note in notes)


def _timing(est: Estimate, members: int) -> Msg:
    """Requests per API and how long they take."""
    side = (
        Msg.of(", the APIs of a phase side by side (each phase as long as its slowest API)")
        if est.side_by_side
        else ""
    )
    halved = (
        Msg.of(
            " (half the documented {limit:g}: LINE WORKS asks runs of over 30 minutes to keep "
            "to half the limit)",
            limit=est.limit,
        )
        if est.halved
        else ""
    )
    pages = directory_pages(members)
    reread = pages * est.window / est.rate * 1.02
    return Msg.counted(
        "lineworks: {n:,} API request ({per_api}): ≈ {duration} at {pace} per API{side}"
        "{halved}; an apply that waits for a confirmation reads the directory again first "
        "(+{pages:,} GET /users, ≈ {reread}); the apply is journaled and resumes where it "
        "stopped",
        "lineworks: {n:,} API requests ({per_api}): ≈ {duration} at {pace} per API{side}"
        "{halved}; an apply that waits for a confirmation reads the directory again first "
        "(+{pages:,} GET /users, ≈ {reread}); the apply is journaled and resumes where it "
        "stopped",
        est.total,
        per_api=Told(lambda t: _per_api(est.requests, t)),
        duration=duration_msg(est.seconds, fractions=True),
        pace=est.pace(),
        side=side,
        halved=halved,
        pages=pages,
        reread=duration_msg(reread, fractions=True),
    )


def _per_api(requests: Mapping[str, int], t: Messages) -> str:
    """`unlink-to-line 2, link-to-line (all members) 1` in the reader's language: the API's
    name as it is, what "(all members)" says translated."""
    said = []
    for api, n in requests.items():
        name = api.removesuffix(ALL_MEMBERS)
        label = t._("{api} (all members)", api=name) if name != api else api
        said.append(f"{label} {n:,}")
    return t._(", ").join(said)


def _managed_keys(desired: DesiredState) -> list[str]:
    keys: list[str] = []
    for channel, want in desired.channels.items():
        names = list(attestable(want, channel))
        if want.members is not None:
            names += ["all_members", "members"]
        keys += [f"{channel.value}.{n}" for n in dict.fromkeys(names)]
    return keys


def attestable(want: DesiredChannel, channel: ChannelName) -> dict[str, Any]:
    """The file's managed values of `channel`, by model attribute (the settings table's rows)."""
    values: dict[str, Any] = {}
    for setting in of(channel):
        wanted = setting.wanted(want)
        if wanted is not None:
            values[setting.attr] = _unspelled(setting, wanted)
    return values


def _unspelled(setting: Setting, value: Any) -> Any:
    """A row's value as the model holds it (members `all`/`listed` back to True/False)."""
    return value == setting.words[0] if setting.words is not None else value

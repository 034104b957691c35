"""Compact text plans: member changes counted per channel and kind, with the first names and
"and N more", so a 10,000-change plan reads in a screenful instead of 20,000 lines.

`lwr plan`, `show-plan` and `apply` print compact text by default past COMPACT_AFTER changes
(README "The plan"); `--compact` forces it, `--no-compact` / `--full` lists every change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.actions import Action, Change
from reconciler.i18n import ENGLISH, N_, Messages
from reconciler.model import ChannelName
from reconciler.plan import Plan
from reconciler.render.values import because_words, pad
from reconciler.terminal import printable

#: More changes than this and text plans are compact unless --no-compact.
COMPACT_AFTER = 200
#: Names shown per kind of member change before "and N more".
SHOWN_NAMES = 5
#: Distinct side effects shown per kind before "and N other".
SHOWN_EFFECTS = 3


def is_compact(plan: Plan, compact: bool | None) -> bool:
    """--compact / --no-compact as given, else compact past COMPACT_AFTER changes."""
    return len(plan.changes) > COMPACT_AFTER if compact is None else compact


@dataclass(frozen=True)
class MemberGroup:
    """The member changes of one kind (add, remove) on one channel, in execution order."""

    channel: ChannelName
    action: Action
    changes: tuple[Change, ...]


def member_groups(changes: Sequence[Change]) -> dict[tuple[ChannelName, Action], MemberGroup]:
    """Member changes by (channel, kind), in the order each kind first appears."""
    found: dict[tuple[ChannelName, Action], list[Change]] = {}
    for c in changes:
        if c.spec.member_level:
            found.setdefault((c.channel, c.action), []).append(c)
    return {key: MemberGroup(key[0], key[1], tuple(cs)) for key, cs in found.items()}


def group_lines(
    group: MemberGroup,
    marker: str,
    flags: Callable[[int, int], str],
    t: Messages = ENGLISH,
    source: str = "",
) -> list[str]:
    """One count line (`marker` styled by the caller; `flags(destructive, manual)` its notes),
    the first names, why (`source`: the plan's file), and the side effects with how many
    changes each, in `t`'s language."""
    first = group.changes[0]
    n = len(group.changes)
    destructive = sum(1 for c in group.changes if c.destructive)
    manual = sum(1 for c in group.changes if c.execution == "manual")
    count = t.n_("{title}: {n:,} member", "{title}: {n:,} members", n, title=t._(first.spec.title))
    lines = [f"  {marker} {pad(group.channel.value, 9)}  {count}"]
    lines[0] += flags(destructive, manual)
    names = t._(", ").join(c.target or "" for c in group.changes[:SHOWN_NAMES])
    rest = t._(", … and {n:,} more", n=n - SHOWN_NAMES) if n > SHOWN_NAMES else ""
    lines.append(printable(f"        {names}{rest}"))
    lines += _why_lines(group, source, t)
    effects = Counter(e.say(t) for c in group.changes for e in c.side_effects)
    for text, times in effects.most_common(SHOWN_EFFECTS):
        of_them = t._(" ({n:,} of them)", n=times) if n > 1 else ""
        lines.append(printable(f"        · {text}{of_them}"))
    if len(effects) > SHOWN_EFFECTS:
        other = t._("        · … and {n:,} other side effects", n=len(effects) - SHOWN_EFFECTS)
        lines.append(other)
    return lines


def _why_lines(group: MemberGroup, source: str, t: Messages) -> list[str]:
    """Why, counted: each selector's words once (`via org unit 営業部, FILE:LINE (120)`);
    plain include entries, a line each, counted together."""
    n = len(group.changes)
    reasons = Counter(
        t._("via include") if c.because.rule == "include" else because_words(c, source, t)
        for c in group.changes
        if c.because is not None
    )
    return [
        printable(f"        ← {why}" + (t._(" ({n:,} of them)", n=times) if n > 1 else ""))
        for why, times in reasons.most_common(SHOWN_EFFECTS)
        if why
    ]


NOTE = N_("Compact view: member changes counted per kind; --no-compact lists every change.")

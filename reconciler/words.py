"""Small wording and clock helpers every layer shares (one spelling of each, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # imported when first used: `lwr --version` imports words, not i18n
    from reconciler.i18n import Messages, Msg


def onoff(value: bool | None) -> str:
    """A switch as lwr's own output writes it: on, or off (unset reads as off)."""
    return "on" if value else "off"


def joined(head: str, sep: str, tail: str) -> str:
    """`head`, then `sep` and `tail` when there is a tail: an optional part (a hint, a
    description) is left out together with its separator."""
    return f"{head}{sep}{tail}" if tail else head


def plural(n: int, word: str) -> str:
    """`1 member`, `2 members`: English plural by appending s."""
    return f"{n} {word}{'s' if n != 1 else ''}"


def utc_now(timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """Now in UTC, ISO 8601.

    Documents (plans, drift reports, attested facts) carry seconds and `+00:00`; the journal
    and audit rows carry milliseconds and `Z`, as rows already written do (they are compared
    as text, so the two forms must not change).
    """
    now = datetime.now(UTC).isoformat(timespec=timespec)
    return now.replace("+00:00", "Z") if timespec == "milliseconds" else now


def duration(seconds: float, *, fractions: bool = False, t: Messages | None = None) -> str:
    """`1 h 5 min`, `3 min 20 s`, `42 s`; under a second `<1 s`, or with `fractions` the
    fraction itself (`0.4 s`: the emulator's scaled windows in plans made in tests); in
    `t`'s language (`1 時間 5 分`; None: English)."""
    from reconciler.i18n import ENGLISH

    return duration_msg(seconds, fractions=fractions).say(t or ENGLISH)


def duration_msg(seconds: float, *, fractions: bool = False) -> Msg:
    """`duration` not yet in a language: for a message said later in its reader's."""
    from reconciler.i18n import Msg

    if seconds < 1:
        return Msg.of("{s:.1g} s", s=seconds) if fractions else Msg.of("<1 s")
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return Msg.of("{h} h {m} min", h=hours, m=minutes)
    return Msg.of("{m} min {s} s", m=minutes, s=secs) if minutes else Msg.of("{s} s", s=secs)

"""How before/after values read in human output (on/off, quoted greetings, emails), and
what a reviewer cannot see in them (a difference in normalisation or invisible characters)."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from reconciler.actions import Action, Change
from reconciler.i18n import ENGLISH, N_, Messages
from reconciler.settings import MEMBERS_MODE
from reconciler.terminal import printable
from reconciler.words import onoff

if TYPE_CHECKING:  # only `lwr drift` of a file with selectors has churn
    from reconciler.selection import Churn

#: Code points listed per side when a difference is invisible; more are summarised.
_CODE_POINTS = 8


def show(value: Any, limit: int | None = 80) -> str:
    """One value for humans: booleans as on/off, text quoted on one line (clipped at `limit`)."""
    if isinstance(value, bool):
        return onoff(value)
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        one_line = printable(value).replace("\n", "⏎")
        if limit is not None and len(one_line) > limit:
            return f"“{one_line[: limit - 3]}…”"
        return f"“{one_line}”"
    return printable(str(value))


def show_setting(setting: str, value: Any, t: Messages = ENGLISH) -> str:
    """A drifted setting's value: in full (a clipped greeting could hide the difference);
    the members mode as the bare word the file uses (all, listed); a switch in `t`'s words
    unless that is English (on/off, as `show` writes it)."""
    if t.lang != "en" and isinstance(value, bool):
        return say(t, value)
    if setting == MEMBERS_MODE.key and isinstance(value, str):
        return printable(value)
    return show(value, limit=None)


def describe(change: Change) -> str:
    """`title: before → after`, or the member for member changes."""
    spec = change.spec
    if spec.member_level:
        return f"{spec.title} {printable(change.target or '')}"
    if not spec.shows_values:
        return spec.title
    if change.action is Action.SET_GREETING:
        parts = [
            f"{key}: {show(change.before.get(key))} → {show(change.after[key])}"
            for key in change.after
        ]
        return f"{spec.title} " + "; ".join(parts)
    return f"{spec.title}: {show(change.before)} → {show(change.after)}"


def say_change(t: Messages, change: Change) -> str:
    """`describe` in `t`'s language: the console's label, on/off in its words."""
    spec = change.spec
    title = t._(spec.title)
    if spec.member_level:
        return t._("{title} {member}", title=title, member=printable(change.target or ""))
    if not spec.shows_values:
        return title
    if change.action is Action.SET_GREETING:
        parts = [
            t._(
                "{key}: {before} → {after}",
                key=t._(_GREETING_KEYS.get(key, key)),
                before=say(t, change.before.get(key)),
                after=say(t, change.after[key]),
            )
            for key in change.after
        ]
        return t._("{title} {values}", title=title, values=t._("; ").join(parts))
    return t._(
        "{title}: {before} → {after}",
        title=title,
        before=say(t, change.before),
        after=say(t, change.after),
    )


def because_words(change: Change, source: str, t: Messages = ENGLISH) -> str:
    """Why, for a reader: `via org unit 営業部/東日本, desired.yaml:14` (`source`: the plan's
    file; '': `line 14`); '' when there is nothing to say."""
    why = change.because
    if why is None:
        return ""
    if why.line:  # without a source (markdown names the file once, at the top): the line
        where = f"{source}:{why.line}" if source else t._("line {n}", n=why.line)
    else:
        where = source
    name = printable(why.name or "")
    if not where and why.rule in ("include", "not_selected", "setting"):
        return ""  # a plan built in memory: "via include" alone says nothing
    if why.rule == "orgunit":
        words = t._("via org unit {name}, {where}", name=name, where=where)
    elif why.rule == "group":
        words = t._("via group {name}, {where}", name=name, where=where)
    elif why.rule == "include":
        words = t._("via include, {where}", where=where)
    elif why.rule == "exclude":
        words = t._("excluded, {where}", where=where)
    elif why.rule == "not_selected":
        words = t._("not selected; {where}", where=where)
    elif why.rule == "left" and why.via == "group":
        words = t._("left group {name}; {where}", name=name, where=where)
    elif why.rule == "left":
        words = t._("left {name}; {where}", name=name, where=where)
    else:
        words = where
    return printable(words).strip(" ,;")


def churn_words(churn: Churn, t: Messages = ENGLISH) -> str:
    """`3 joined 営業部 since the last apply, 1 left` (a group: `group partner-support`)."""
    name = printable(churn.name)
    if churn.rule == "group":
        text = N_("{joined} joined group {name} since the last apply, {left} left")
    else:
        text = N_("{joined} joined {name} since the last apply, {left} left")
    return t._(text, joined=len(churn.joined), name=name, left=len(churn.left))


#: The greeting's two keys as human output names them (their YAML keys in English).
_GREETING_KEYS = {"enabled": N_("enabled"), "message": N_("message")}


def say(t: Messages, value: Any) -> str:
    """`show` in `t`'s language: switches in the words of the glossary (docs/ja/glossary.md)."""
    if isinstance(value, bool):
        return t._("on") if value else t._("off")
    if value is None:
        return t._("(unset)")
    return show(value)


def pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal cells: a full-width character takes two."""
    if text.isascii():  # one cell a character; wcwidth's tables cost ~25 ms to load
        return f"{text:<{width}}"
    return text + " " * max(0, width - cells(text))


def cells(text: str) -> int:
    """How many terminal cells `text` takes (its length where it has no width)."""
    if text.isascii():
        return len(text)
    from wcwidth import wcswidth

    width = wcswidth(text)
    return width if width >= 0 else len(text)


def text_changes(change: Change) -> list[tuple[str, str, str]]:
    """(name, before, after) of each text value `change` sets: the greeting message."""
    if change.action is not Action.SET_GREETING or not isinstance(change.after, dict):
        return []
    before = change.before if isinstance(change.before, dict) else {}
    old, new = before.get("message"), change.after.get("message")
    if isinstance(new, str) and isinstance(old, str | None):
        return [("message", old or "", new)]
    return []


def hidden_differences(change: Change, t: Messages = ENGLISH) -> list[str]:
    """A note for each text value of `change` whose change a reader of the rendered
    values would not see, e.g. "message differs only in Unicode normalisation: NFD → NFC"."""
    notes = []
    for name, old, new in text_changes(change):
        note = invisible_difference(old, new, t) or clipped_difference(old, new, t=t)
        if note:
            notes.append(t._("{name} {note}", name=t._(_GREETING_KEYS.get(name, name)), note=note))
    return notes


def clipped_difference(
    before: str, after: str, limit: int = 80, t: Messages = ENGLISH
) -> str | None:
    """Where `before` and `after` differ when both read the same clipped at `limit`
    (a long greeting changed near its end), with a little of each side around it."""
    if before == after or show(before, limit) != show(after, limit):
        return None
    start = next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
        min(len(before), len(after)),
    )
    lo = max(0, start - 10)
    return t._(
        "differs after what is shown, at character {at}: {before} → {after}",
        at=start + 1,
        before=show(before[lo : start + 30], None),
        after=show(after[lo : start + 30], None),
    )


def setting_difference(desired: Any, current: Any, t: Messages = ENGLISH) -> str | None:
    """The invisible difference between a drifted setting's two values, if it has one."""
    if isinstance(desired, str) and isinstance(current, str):
        note = invisible_difference(current, desired, t)
        return t._("{note} (current → desired)", note=note) if note else None
    return None


def _looks(text: str) -> str:
    """What a reader sees of `text`, roughly: one normalisation, spaces alike, no
    invisible characters, no trailing whitespace on a line."""
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        kept.append(" " if category == "Zs" else ch)
    return "\n".join(line.rstrip() for line in "".join(kept).splitlines())


def _form(text: str) -> str:
    """NFC, NFD, or mixed (a text in both, like plain ASCII, counts as NFC)."""
    if unicodedata.is_normalized("NFC", text):
        return "NFC"
    return "NFD" if unicodedata.is_normalized("NFD", text) else "mixed"


def invisible_difference(before: str, after: str, t: Messages = ENGLISH) -> str | None:
    """How `before` and `after` differ when they look the same, else None.

    A difference only in normalisation is named ("differs only in Unicode normalisation:
    NFD → NFC"); any other invisible one (no-break or trailing space, zero-width and bidi
    characters) shows the code points where the two first part.
    """
    if before == after or _looks(before) != _looks(after):
        return None
    if unicodedata.normalize("NFC", before) == unicodedata.normalize("NFC", after):
        return t._(
            "differs only in Unicode normalisation: {before} → {after}",
            before=_form(before),
            after=_form(after),
        )
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return t._(
        "differs only in characters that do not show, at character {at}: {before} → {after}",
        at=start + 1,
        before=_code_points(before[start : len(before) - end], t),
        after=_code_points(after[start : len(after) - end], t),
    )


def _code_points(text: str, t: Messages = ENGLISH) -> str:
    if not text:
        return t._("(nothing)")
    shown = [f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}" for ch in text[:_CODE_POINTS]]
    more = len(text) - _CODE_POINTS
    return " ".join(shown) + (t._(" … and {n} more", n=more) if more > 0 else "")

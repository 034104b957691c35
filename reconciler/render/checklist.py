"""The manual-step checklist as an admin reads it: console path, exact value, what to press.

A view over reconciler.manual's data (ManualStep, ManualStepsPending), so the wording lives
here once: the checklist `lwr apply` prints before it asks, the prompt for one step, and the
refusal that lists the steps an apply stopped before. In the reader's language: the console
path, labels and values are the Japanese console's own words in Japanese (their sources:
docs/ja/console.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.actions import Action, Change
from reconciler.i18n import ENGLISH, N_, Messages, say
from reconciler.manual import ManualStep, ManualStepsPending, steps
from reconciler.providers.base import CONSOLE_PAGE
from reconciler.settings import FILE_RESTRICTION, GREETING_ENABLED, MEMBER_LIST_LABEL, Setting

__all__ = ["checklist", "line", "message_of", "path", "pending_message", "todo", "value"]

#: The console's Japanese words where they are not the English ones said word for word:
#: the ids are the English console's (settings.SETTINGS, model.CHANNEL_LABELS).
_CONSOLE_WORDS = (
    N_("Admin > Service > Message > External messaging"),
    N_("Chat with LINE users"),
    N_("Chat with LINE WORKS users from other companies"),
    N_("Use status"),
    N_("Use"),
    N_("Not use"),
    N_("Automatically grant link authority to new members"),
    N_("On"),
    N_("Off"),
    N_("Restrict file transfer/attachment"),
    N_("Automatic greeting message"),
    N_("Permissions"),
    N_("Grant to all members"),
    N_("Grant by member"),
    N_("Connected-members > Manage"),
)


def path(step: ManualStep, t: Messages = ENGLISH) -> str:
    """The console path down to the setting."""
    moves = step.change.spec.moves
    setting = moves[0].label if moves else MEMBER_LIST_LABEL
    return " > ".join(t._(part) for part in (CONSOLE_PAGE, step.change.channel.label, setting))


def _word(setting: Setting, on: bool, t: Messages) -> str:
    """What the console shows for `on`. The Japanese guide names the file switch
    (ファイル送信・添付可否) but not its values, so Japanese says what the value does."""
    if setting is FILE_RESTRICTION and t.lang != "en":
        return t._("restrict") if on else t._("do not restrict")
    return t._(setting.console_word(on))


def value(step: ManualStep, t: Messages = ENGLISH) -> str:
    """The exact value to set, as the console shows it."""
    change = step.change
    spec = change.spec
    if change.action is Action.SET_GREETING:
        parts = []
        if "enabled" in change.after:
            parts.append(_word(GREETING_ENABLED, bool(change.after["enabled"]), t))
        if "message" in change.after:
            parts.append(t._("message exactly:\n{text}", text=_indent(change.after["message"])))
        return t._(", ").join(parts)
    if change.action is Action.ADD_MEMBER:
        return t._("add {member}", member=change.target)
    if change.action is Action.REMOVE_MEMBER:
        return t._("delete {member}", member=change.target)
    after = spec.fixed_after if spec.fixed_after is not None else bool(change.after)
    return _word(spec.moves[0], after, t)


def todo(step: ManualStep, t: Messages = ENGLISH) -> str:
    """`set On, then press Save`; a multi-line value ends before the instruction."""
    change = step.change
    if change.action in (Action.ADD_MEMBER, Action.REMOVE_MEMBER):  # a verb, not a value
        verb = t._("add") if change.action is Action.ADD_MEMBER else t._("delete")
        return t._("set {verb} {member}, then press Save", verb=verb, member=change.target)
    text = value(step, t)
    if "\n" in text:
        return t._("set {value}\n      then press Save", value=text)
    return t._("set {value}, then press Save", value=text)


def line(step: ManualStep, t: Messages = ENGLISH) -> str:
    """`[2/3] Admin > … > Restrict file transfer/attachment: set On, then press Save`."""
    return f"[{step.number}/{step.total}] {path(step, t)}: {todo(step, t)}  ({step.change.id})"


def _indent(text: str) -> str:
    return "\n".join(f"      | {row}" for row in text.splitlines() or [""])


def checklist(changes: Sequence[Change], t: Messages = ENGLISH) -> str:
    """The printable checklist of a plan's manual steps ('' when there are none)."""
    items = steps(changes)
    if not items:
        return ""
    head = t.n_(
        "{n} manual step (no public API; done by an admin in the console, in this order):",
        "{n} manual steps (no public API; done by an admin in the console, in this order):",
        len(items),
    )
    return "\n".join([head, *(f"  {line(s, t)}" for s in items)]) + "\n"


def pending_message(error: ManualStepsPending, t: Messages = ENGLISH) -> str:
    """The refusal of an apply that stopped before manual steps, with their checklist: what
    the CLI prints for ManualStepsPending, alone or in a directory's results."""
    head = t.n_(
        "refused: {reason}; {n} manual step not done:",
        "refused: {reason}; {n} manual steps not done:",
        len(error.pending),
        reason=say(error.reason, t),
    )
    tail = t._(
        "Do them in the console, then run apply again with --manual=attested "
        "(or --manual=skip to leave them, and what depends on them, for later)."
    )
    return f"{head}\n{checklist(error.pending, t)}{tail}"


def message_of(error: BaseException, t: Messages = ENGLISH) -> str:
    """An error's message as the CLI shows it, in `t`'s language: ManualStepsPending with
    its checklist; an LwrError said again (LwrError.said)."""
    from reconciler.errors import LwrError

    if isinstance(error, ManualStepsPending):
        return pending_message(error, t)
    return error.said(t) if isinstance(error, LwrError) else str(error)

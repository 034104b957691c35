"""The manual-step checklist as an admin reads it: console path, exact value, what to press.

A view over reconciler.manual's data (ManualStep, ManualStepsPending), so the wording lives
here once: the checklist `lwr apply` prints before it asks, the prompt for one step, and the
refusal that lists the steps an apply stopped before.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.actions import Action, Change
from reconciler.manual import ManualStep, ManualStepsPending, steps
from reconciler.providers.base import CONSOLE_PAGE
from reconciler.settings import GREETING_ENABLED, MEMBER_LIST_LABEL
from reconciler.words import plural

__all__ = ["checklist", "line", "message_of", "path", "pending_message", "todo", "value"]


def path(step: ManualStep) -> str:
    """The console path down to the setting."""
    moves = step.change.spec.moves
    setting = moves[0].label if moves else MEMBER_LIST_LABEL
    return f"{CONSOLE_PAGE} > {step.change.channel.label} > {setting}"


def value(step: ManualStep) -> str:
    """The exact value to set, as the console shows it."""
    change = step.change
    spec = change.spec
    if change.action is Action.SET_GREETING:
        parts = []
        if "enabled" in change.after:
            parts.append(GREETING_ENABLED.console_word(change.after["enabled"]))
        if "message" in change.after:
            parts.append(f"message exactly:\n{_indent(change.after['message'])}")
        return ", ".join(parts)
    if change.action in (Action.ADD_MEMBER, Action.REMOVE_MEMBER):
        return f"{'add' if change.action is Action.ADD_MEMBER else 'delete'} {change.target}"
    after = spec.fixed_after if spec.fixed_after is not None else bool(change.after)
    return spec.moves[0].console_word(after)


def todo(step: ManualStep) -> str:
    """`set On, then press Save`; a multi-line value ends before the instruction."""
    text = value(step)
    return f"set {text}\n      then press Save" if "\n" in text else f"set {text}, then press Save"


def line(step: ManualStep) -> str:
    """`[2/3] Admin > … > Restrict file transfer/attachment: set On, then press Save`."""
    return f"[{step.number}/{step.total}] {path(step)}: {todo(step)}  ({step.change.id})"


def _indent(text: str) -> str:
    return "\n".join(f"      | {row}" for row in text.splitlines() or [""])


def checklist(changes: Sequence[Change]) -> str:
    """The printable checklist of a plan's manual steps ('' when there are none)."""
    items = steps(changes)
    if not items:
        return ""
    head = (
        f"{plural(len(items), 'manual step')} (no public API; "
        "done by an admin in the console, in this order):"
    )
    return "\n".join([head, *(f"  {line(s)}" for s in items)]) + "\n"


def pending_message(error: ManualStepsPending) -> str:
    """The refusal of an apply that stopped before manual steps, with their checklist: what
    the CLI prints for ManualStepsPending, alone or in a directory's results."""
    return (
        f"refused: {error.reason}; {plural(len(error.pending), 'manual step')} not done:\n"
        + checklist(error.pending)
        + "Do them in the console, then run apply again with --manual=attested "
        "(or --manual=skip to leave them, and what depends on them, for later)."
    )


def message_of(error: BaseException) -> str:
    """An error's message as the CLI shows it: ManualStepsPending with its checklist."""
    return pending_message(error) if isinstance(error, ManualStepsPending) else str(error)

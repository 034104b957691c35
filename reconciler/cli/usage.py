"""click's usage errors in the reader's language: a missing argument, an unknown option or
command, an option without its value, a value not among the choices (imported only when one
is shown).

click words these itself, in English, with no Japanese catalog; the words are built again
here from what each error carries (the parameter, the option's name, the close matches), so
nothing is parsed back out of click's prose. English keeps click's own text; an error of a
kind not known here keeps click's English line, with the English `Error: ` prefix (one
language per line).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import click

from reconciler.i18n import Said, Told, say

if TYPE_CHECKING:
    from reconciler.i18n import Messages

__all__ = ["DoubleDash", "usage_error_text"]


class DoubleDash(click.exceptions.NoSuchOption):
    """A Terraform-style single-dash flag (`-detailed-exitcode`), with the long option meant."""

    def __init__(self, word: str, meant: str, ctx: click.Context | None) -> None:
        self.meant = meant
        said = Said.of("No such option: {word}: did you mean {meant}?", word=word, meant=meant)
        super().__init__(word, said, ctx=ctx)


def usage_error_text(error: click.UsageError, t: Messages, argv: list[str]) -> str:
    """The usage line, the help hint and the error, as click shows them, in `t`'s language;
    `argv`: the command line, which tells what an option lacked or had too much."""
    if t.lang == "en":
        shown = io.StringIO()
        error.show(file=shown)
        return shown.getvalue()
    said = _option_usage(error, t, argv) if isinstance(error, click.BadOptionUsage) else None
    said = said or _said(error, t)
    line = t._("Error: ") + said if said else f"Error: {error.format_message()}"
    return _head(error.ctx, t) + line + "\n"


def _head(ctx: click.Context | None, t: Messages) -> str:
    if ctx is None:
        return ""
    hint = ""
    if ctx.command.get_help_option(ctx) is not None:
        option = max(ctx.command.get_help_option_names(ctx), key=len)
        hint = t._("Try '{command} {option}' for help.", command=ctx.command_path, option=option)
        hint += "\n"
    return f"{ctx.get_usage()}\n{hint}\n"


def _said(error: click.UsageError, t: Messages) -> str | None:
    """The error's message in `t`'s language, or None for a kind of error not known here."""
    if isinstance(error, click.MissingParameter):
        return _missing(error, t)
    if isinstance(error, click.BadParameter):
        if not isinstance(error.message, Said | Told):
            return None  # a click type's own words
        hint = _hint(error)
        reason = say(error.message, t)
        if hint is None:
            return t._("Invalid value: {reason}", reason=reason)
        return t._("Invalid value for {name}: {reason}", name=hint, reason=reason)
    if isinstance(error, click.NoSuchOption):
        return _no_such_option(error, t)
    return say(error.message, t) if isinstance(error.message, Said | Told) else None


def _hint(error: click.BadParameter) -> str | None:
    if error.param_hint is not None:
        hints = error.param_hint
        return hints if isinstance(hints, str) else " / ".join(repr(h) for h in hints)
    return error.param.get_error_hint(error.ctx) if error.param and error.ctx else None


def _missing(error: click.MissingParameter, t: Messages) -> str:
    name = _hint(error) or ""
    kind = error.param_type or (error.param.param_type_name if error.param else "parameter")
    if kind == "argument":
        said = t._("Missing argument {name}.", name=name)
    elif kind == "option":
        said = t._("Missing option {name}.", name=name)
    else:
        said = t._("Missing parameter {name}.", name=name)
    if error.param is not None and isinstance(error.param.type, click.Choice):
        choices = t._(", ").join(str(choice) for choice in error.param.type.choices)
        return t._("{missing} Choose from: {choices}", missing=said, choices=choices)
    return said


def _no_such_option(error: click.NoSuchOption, t: Messages) -> str:
    if isinstance(error, DoubleDash):
        return say(error.message, t)
    name = repr(error.option_name)
    close = sorted(error.possibilities or ())
    if not close:
        return t._("No such option {name}.", name=name)
    return t.n_(
        "No such option {name}. Did you mean {options}?",
        "No such option {name}. (Did you mean one of: {options}?)",
        len(close),
        name=name,
        options=t._(", ").join(repr(option) for option in close),
    )


def _option_usage(error: click.BadOptionUsage, t: Messages, argv: list[str]) -> str | None:
    """A flag given a value (`--yes=1`, the one way click lets it have one), or an option
    given none (it came last); None for another misuse."""
    name = error.option_name
    if isinstance(error, click.NoSuchOption):
        return None
    if any(word.startswith(f"{name}=") for word in argv):
        return t._("Option {name} does not take a value.", name=repr(name))
    if argv and argv[-1] == name:
        return t._("Option {name} requires an argument.", name=repr(name))
    return None

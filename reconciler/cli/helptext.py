"""`--help` in the reader's language: click reads every help text when a module is imported,
in English; these command classes say it again in the language of the run when the help is
formatted (`lwr --lang ja plan --help`, `LWR_LANG=ja lwr --help`), and leave English alone.

The message ids are the English texts themselves: each option's `help=N_(…)` and each
command's docstring (extracted by babel_help.py at the repository's root). Nothing here runs
until a help page is printed, so start-up costs one small module.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from reconciler.i18n import Messages

__all__ = ["N_", "Choice", "HelpCommand", "HelpGroup"]


def N_(message: str) -> str:
    """Mark a help text for extraction; it is translated when the help is formatted."""
    return message


# click's own words on a help page, in its English (it has no Japanese catalog).
N_("Show this message and exit.")
N_("Show the version and exit.")


def reader(ctx: click.Context) -> Messages | None:
    """The run's language, or None for English: the group's callback has set it for a
    command's help; for `lwr --lang ja --help` the eager --lang is already parsed."""
    from reconciler.i18n import Messages, choose_lang

    root = ctx.find_root()
    t = root.obj if isinstance(root.obj, Messages) else None
    if t is None:
        lang = root.params.get("lang")
        t = Messages(choose_lang(lang if isinstance(lang, str) else None, os.environ))
    return None if t.lang == "en" else t


class _Translated(click.Command):
    """The help page of a command, said in the run's language (English: click's own)."""

    def get_help(self, ctx: click.Context) -> str:
        t = reader(ctx)
        if t is None:
            return super().get_help(ctx)
        formatter = CellFormatter(width=ctx.terminal_width, max_width=ctx.max_content_width)
        self.format_help(ctx, formatter)
        return formatter.getvalue().rstrip("\n")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """click's own, but extra arguments are refused in words the reader's language can
        say again (cli.usage)."""
        if ctx.allow_extra_args or ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        ctx.allow_extra_args = True  # checked below instead, in our words
        try:
            extra = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = False
        if extra:
            from reconciler.i18n import Said

            said = Said.counted(
                "Got unexpected extra argument ({args})",
                "Got unexpected extra arguments ({args})",
                len(extra),
                args=" ".join(extra),
            )
            raise click.UsageError(said, ctx)
        return extra

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        t = reader(ctx)
        if t is None:
            return super().format_usage(ctx, formatter)
        pieces = self.collect_usage_pieces(ctx)
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=t._("Usage: "))
        return None

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        t = reader(ctx)
        if t is None or not self.help:
            return super().format_help_text(ctx, formatter)
        text = t._(inspect.cleandoc(self.help)).partition("\f")[0]
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(text)
        return None

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        t = reader(ctx)
        if t is None:
            return super().format_options(ctx, formatter)
        rows = [
            row
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and (row := _option_row(param, ctx, t))
        ]
        if rows:
            with formatter.section(t._("Options")):
                formatter.write_dl(rows)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)
        return None

    def short_help_in(self, t: Messages, limit: int) -> str:
        """The first sentence of the translated help, within `limit` cells."""
        if self.short_help or not self.help:
            return self.get_short_help_str(limit)
        text = t._(inspect.cleandoc(self.help)).partition("\f")[0]
        first = " ".join(text.split("\n\n")[0].split())
        sentence = first.split("。")[0] + ("。" if "。" in first else "")
        return _clip(sentence, limit)


def _option_row(param: click.Option, ctx: click.Context, t: Messages) -> tuple[str, str] | None:
    """An option's row as click writes it, its help and notes in `t`'s language."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    text = t._(param.help) if param.help else ""
    extra = param.get_help_extra(ctx)
    notes = []
    if "envvars" in extra:
        notes.append(t._("env var: {var}", var=", ".join(extra["envvars"])))
    if "default" in extra:
        notes.append(t._("default: {default}", default=extra["default"]))
    if "range" in extra:
        notes.append(extra["range"])
    if "required" in extra:
        notes.append(t._("required"))
    if notes:
        joined = t._("; ").join(notes)
        text = f"{text}  [{joined}]" if text else f"[{joined}]"
    return record[0], text


class HelpCommand(_Translated):
    """A command whose help page is in the run's language."""


class HelpGroup(_Translated, click.Group):
    """A group whose help page, commands list included, is in the run's language; its
    commands and subgroups are HelpCommand and HelpGroup."""

    command_class = HelpCommand
    group_class: type[click.Group] | type[type] | None = type  # a subgroup: this class

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's own, but an unknown command is refused in words the reader's language can
        say again (cli.usage)."""
        name = args[0] if args else ""
        unknown = self.get_command(ctx, name) is None and not name.startswith("-")
        if unknown and not ctx.resilient_parsing:
            from reconciler.i18n import Said

            raise click.UsageError(Said.of("No such command {name}.", name=repr(name)), ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        t = reader(ctx)
        if t is None:
            return super().format_commands(ctx, formatter)
        commands = [
            (name, cmd)
            for name in self.list_commands(ctx)
            if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden
        ]
        if not commands:
            return None
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        rows = [
            (name, cmd.short_help_in(t, limit) if isinstance(cmd, _Translated) else "")
            for name, cmd in commands
        ]
        with formatter.section(t._("Commands")):
            formatter.write_dl(rows)
        return None


# ------------------------------------------------------------------------ wrapping by cells


def cells(text: str) -> int:
    """Terminal cells of `text`: wide and full-width characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, limit: int) -> str:
    if cells(text) <= limit:
        return text
    out, used = "", 0
    for c in text:
        if used + cells(c) > limit - 1:
            break
        out, used = out + c, used + cells(c)
    return out + "…"


#: Japanese line breaking (kinsoku): never start a line with these, nor end one with those.
_NO_START = set("、。・：？！）」』】ー…\uff0c\uff0e\uff1b\u3015")  # full-width , . ; too
_NO_END = set("（「『【\u3014")


def _atoms(text: str) -> Iterator[str]:
    """Pieces a line may break between: ASCII words, spaces, and each wide character
    (with the punctuation that may not be parted from it)."""
    word = ""
    for c in text:
        if c.isascii() and not c.isspace():
            word += c
            continue
        if word:
            yield word
            word = ""
        yield c
    if word:
        yield word


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells, breaking at spaces and between wide
    characters; a line never starts with closing punctuation."""
    lines: list[str] = []
    line = ""
    for atom in _glued(list(_atoms(" ".join(text.split())))):
        if atom == " " and not line:
            continue
        if line and cells(line) + cells(atom) > width:
            lines.append(line.rstrip())
            line = "" if atom == " " else atom
            continue
        line += atom
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _glued(atoms: Sequence[str]) -> Iterator[str]:
    """Atoms with kinsoku applied: closing punctuation joins the atom before it, opening
    brackets the atom after them."""
    held = ""
    out: list[str] = []
    for atom in atoms:
        if atom in _NO_START and out and out[-1] != " ":
            out[-1] += atom
            continue
        if atom in _NO_END:
            held += atom
            continue
        out.append(held + atom)
        held = ""
    if held:
        out.append(held)
    yield from out


class CellFormatter(click.HelpFormatter):
    """click's formatter, with text wrapped by display width (Japanese is two cells a
    character, and has no spaces to break at)."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        width = max(self.width - self.current_indent, 11)
        for i, paragraph in enumerate(text.split("\n\n")):
            if i:
                self.write("\n")
            if paragraph.startswith("\b"):  # click's mark: not rewrapped
                rows = paragraph[1:].strip("\n").splitlines()
            else:
                rows = wrap(paragraph, width)
            self.write("".join(f"{indent}{row}\n" for row in rows))

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first = min(max((cells(r[0]) for r in rows), default=0), col_max)
        for term, text in rows:
            self.write(f"{'':>{self.current_indent}}{term}")
            if not text:
                self.write("\n")
                continue
            if cells(term) <= first:
                self.write(" " * (first - cells(term) + col_spacing))
            else:
                self.write("\n" + " " * (first + col_spacing + self.current_indent))
            lines = wrap(text, max(self.width - first - col_spacing - self.current_indent, 10))
            pad = " " * (first + col_spacing + self.current_indent)
            self.write(lines[0] + "\n" if lines else "\n")
            self.write("".join(f"{pad}{line}\n" for line in lines[1:]))


class Choice(click.Choice[str]):
    """click.Choice whose refusal of a value is said in the run's language."""

    def get_invalid_choice_message(self, value: object, ctx: click.Context | None) -> str:
        """`'x' is not one of 'text', 'json'.`, said again in the reader's language."""
        from reconciler.i18n import Said, listing  # on a refusal only: start-up stays light

        choices = [repr(choice) for choice in self.choices]
        return Said.of(
            "{value} is not one of {choices}.",
            value=repr(value),
            choices=listing(choices),
        )

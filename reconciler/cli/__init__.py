"""The `lwr` command line: parse options, call the library, print, map errors to exit codes.

The only package that prints. Exit codes: reconciler.errors.ExitCode (0 ok, 1 error, 2 changes,
3 refused; docs/contract.md#exit-codes).
One module per group of commands: plans.py (validate, plan, show-plan, drift), applying.py
(apply), tenants.py (export, show, attest, tenant …), state.py (audit, unlock, lock, state);
common.py has the group, the shared options and how a tenant and a state store are opened;
fleets.py what those commands do with a directory of tenants.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import cli  # commands register when first used: reconciler.cli.lazy
from reconciler.errors import ExitCode, LwrError
from reconciler.stopped import ApplyStopped
from reconciler.terminal import printable

if TYPE_CHECKING:
    from reconciler.i18n import Messages

__all__ = ["cli", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run `lwr` with `argv` and return its exit code; every failure becomes a code."""
    try:
        code = cli.main(args=argv, prog_name="lwr", standalone_mode=False)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click wraps Ctrl-C (and SIGTERM)
            return _interrupted(_signal_of(e.__cause__), _reader(argv))
        return _fail(_reader(argv)._("Aborted."), ExitCode.ERROR)
    except click.exceptions.ClickException as e:
        if isinstance(e, click.exceptions.NoSuchOption):
            e = _suggest_double_dash(e, sys.argv[1:] if argv is None else argv)
        if isinstance(e, click.exceptions.UsageError):
            from reconciler.cli.usage import usage_error_text

            text = usage_error_text(e, _reader(argv), sys.argv[1:] if argv is None else argv)
        else:
            shown = io.StringIO()
            e.show(file=shown)
            text = shown.getvalue()
        click.echo(printable(text), err=True, nl=False)  # click quotes the bad value
        return ExitCode.ERROR  # bad usage is bad input; CHANGES means "changes present"
    except ApplyStopped as e:  # what it did is said already (cli.applying): now why
        if e.interrupted:
            click.echo(err=True)  # as click does after a Ctrl-C it sees itself
            return _interrupted(e.signal or signal.SIGINT, _reader(argv))
        return _failure(e.cause, argv)
    except BaseException as e:
        return _failure(e, argv)
    return code if isinstance(code, int) else ExitCode.OK


def _suggest_double_dash(
    error: click.exceptions.NoSuchOption, argv: list[str]
) -> click.exceptions.NoSuchOption:
    """Terraform's single-dash flags (`-detailed-exitcode`, `-out=x`): click reads `-d`, `-o`
    as unknown short options; name the long option the user meant instead."""
    command = error.ctx.command if error.ctx is not None else None
    known = {o for p in (command.params if command else []) for o in p.opts if o[:2] == "--"}
    for word in argv:
        name, eq, value = word.partition("=")
        single = name[:1] == "-" and name[1:2] != "-" and name.startswith(error.option_name)
        if single and f"-{name}" in known:
            from reconciler.cli.usage import DoubleDash

            return DoubleDash(word, f"-{name}{eq}{value}", error.ctx)
    return error


def _failure(error: BaseException, argv: list[str] | None) -> int:
    """The message and exit code of an error that left the command run with `argv`."""
    if isinstance(error, LwrError):
        from reconciler.render.checklist import message_of  # on failure only: start-up stays light

        t = _reader(argv)
        said = message_of(error, t)
        # An error not translated yet keeps its English prefix: one language per line.
        english = t.lang == "en" or said == message_of(error)
        prefix = error.prefix if english or not error.prefix else t._("Error: ")
        return _fail(f"{prefix}{said}", error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return _interrupted(_signal_of(error), _reader(argv))
    if isinstance(error, BrokenPipeError):
        return ExitCode.ERROR  # a closed pipe (`| head`) is not worth a traceback
    if not isinstance(error, Exception) or os.environ.get("LWR_DEBUG"):
        raise error  # SystemExit and the like; the traceback on request
    # The last line of defence: never a traceback for users. A library's own message may
    # quote a URI it was given, secrets and all.
    text = _scrubbed(f"{type(error).__name__}: {error}", sys.argv[1:] if argv is None else argv)
    told = _reader(argv)._(
        "Internal error: {error}\n(set LWR_DEBUG=1 for details and please report it)", error=text
    )
    return _fail(told, ExitCode.ERROR)


def _reader(argv: list[str] | None) -> Messages:
    """The language the command was run in: the `lwr` group's context is gone once an error
    has left it, so its `--lang` is read again from `argv` (the group's options only)."""
    from reconciler.i18n import Messages, choose_lang

    try:
        ctx = cli.make_context(
            "lwr", list(sys.argv[1:] if argv is None else argv), resilient_parsing=True
        )
        lang = ctx.params.get("lang")
    except (click.exceptions.ClickException, click.exceptions.Exit):
        lang = None
    return Messages(choose_lang(lang if isinstance(lang, str) else None, os.environ))


def _interrupted(signum: int, t: Messages) -> int:
    """Exit 128 + the signal, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM; the
    last line in the command's language."""
    if signum == signal.SIGINT:
        return _fail(t._("Interrupted."), 128 + signum)
    return _fail(t._("Stopped by {signal}.", signal=signal.Signals(signum).name), 128 + signum)


def _scrubbed(text: str, argv: list[str]) -> str:
    """`text` with every tenant or state URI of this command (its arguments, LWR_TENANT,
    LWR_STATE) and their secrets masked."""
    from reconciler.uris import scrub

    sources = [*argv, os.environ.get("LWR_TENANT", ""), os.environ.get("LWR_STATE", "")]
    for uri in sources:
        if "://" in uri or uri.startswith(("lineworks:", "local:")):
            text = scrub(text, uri.partition("=")[2] if uri.startswith("--") else uri)
    return text


def _fail(message: str, code: int) -> int:
    """Print `message` on stderr, its controls escaped: errors quote files, URIs and values."""
    click.echo(printable(message), err=True)
    return code


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside an apply's batches: unwinds like Ctrl-C, so transactions roll back,
    files and locks are released, and `lwr` exits 143 with a message instead of dying."""

    signum = signal.SIGTERM


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _signal_of(error: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: SIGTERM or SIGINT (Ctrl-C, the default)."""
    return error.signum if isinstance(error, _Terminated) else signal.SIGINT


def main() -> None:
    """Console-script entry point."""
    # Only here, not in run(): a host program (or pytest) calling run() keeps its handlers.
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes again at exit; point stdout at devnull so that cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)

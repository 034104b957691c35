"""`lwr completion bash|zsh|fish`: the shell-completion script click generates for `lwr`."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from reconciler.cli.common import cli
from reconciler.cli.helptext import Choice
from reconciler.errors import UsageError
from reconciler.i18n import Said

SHELLS = ("bash", "zsh", "fish")


@cli.command()
@click.argument("shell", type=Choice(SHELLS))
def completion(shell: str) -> int:
    """Print the completion script for SHELL; load it from your shell's start-up file:

    \b
      bash: eval "$(lwr completion bash)"   (in ~/.bashrc)
      zsh:  eval "$(lwr completion zsh)"    (in ~/.zshrc)
      fish: lwr completion fish > ~/.config/fish/completions/lwr.fish
    """
    found = get_completion_class(shell)
    if found is None:  # click knows every shell in SHELLS; a future click might not
        raise UsageError(Said.of("click offers no completion for {shell}", shell=shell))
    click.echo(found(cli, {}, "lwr", "_LWR_COMPLETE").source())
    return 0

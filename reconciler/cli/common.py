"""What every command shares: the `lwr` group, common options, opening tenant and state."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import __version__
from reconciler.cli.helptext import N_, Choice, HelpGroup
from reconciler.cli.lazy import files
from reconciler.errors import LwrError
from reconciler.terminal import printable
from reconciler.uris import DEFAULT_TENANT, local_path

if TYPE_CHECKING:
    from reconciler.i18n import Messages
    from reconciler.policy import PolicyReport, PolicyRule
    from reconciler.providers.base import Provider
    from reconciler.store import StateLocation
    from reconciler.store.base import StateStore


tenant_option = click.option(
    "--tenant",
    "tenant_uri",
    envvar="LWR_TENANT",
    default=DEFAULT_TENANT,
    show_default=True,
    help=N_("Tenant URI: local:PATH (embedded tenant) or lineworks: (env LWR_TENANT)."),
)
state_option = click.option(
    "--state",
    "state_uri",
    envvar="LWR_STATE",
    default=None,
    help=N_(
        "Where lock, journal, audit log and attested state live (env LWR_STATE): "
        "local:PATH (SQLite) or postgresql://USER@HOST/DB[?schema=NAME] (shared by every "
        "runner); default: state.db beside a local tenant, else .lwr/state.db."
    ),
)
state_tenant_option = click.option(
    "--tenant",
    "tenant_uri",
    envvar="LWR_TENANT",
    default=DEFAULT_TENANT,
    show_default=True,
    help=N_("Only used to find the default state store (state.db beside a local tenant)."),
)


def text_or_json(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format text|json` (text by default) for a command whose json is `help`'s."""
    return click.option(
        "--format",
        "fmt",
        type=Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help,
    )


format_option = click.option(
    "--format",
    "fmt",
    type=Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help=N_("Output format."),
)
markdown_dir_option = click.option(
    "--markdown-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=N_(
        "Also write the markdown rendering to DIR/part-1.md, part-2.md, … (each under "
        "65,000 characters: one pull-request comment each)."
    ),
)


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def stacked(*options: Decorator) -> Decorator:
    """`options` (click.option decorators) as one decorator, in the order written, as if each
    stood on its own line above the command. click makes a new Option each time a decorator is
    applied, so one stack serves every command it decorates."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):  # the lowest decorator is applied first
            command = option(command)
        return command

    return decorate


#: --compact and --no-compact/--full: member changes counted per kind, or each listed
#: (reconciler.render.compact; default: text compact past 200 changes, markdown always).
compact_options = stacked(
    click.option(
        "--compact",
        "compact",
        flag_value=True,
        default=None,
        help=N_(
            "Count member changes per channel and kind, with the first names (the default "
            "for text past 200 changes, and for markdown)."
        ),
    ),
    click.option(
        "--no-compact",
        "--full",
        "compact",
        flag_value=False,
        help=N_("List every change (markdown: every member, in more parts)."),
    ),
)
#: --parallel (a directory of desired files, reconciler.fleet) and --fail-fast.
fleet_options = stacked(
    click.option(
        "--parallel",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help=N_("With a directory: how many tenants run at once."),
    ),
    click.option(
        "--fail-fast",
        is_flag=True,
        help=N_(
            "Stop at the first change the tenant refuses (default: apply what does not "
            "depend on it, then report); with a directory, also start no further tenant once "
            "one fails."
        ),
    ),
)
#: --policy-dir (repeatable) and --no-default-policies (docs/contract.md#policies).
policy_options = stacked(
    click.option(
        "--policy-dir",
        "policy_dirs",
        multiple=True,
        type=click.Path(file_okay=False),
        help=N_(
            "Also check the rules in DIR/*.yaml (repeatable); a rule with the id of a shipped "
            "one replaces it."
        ),
    ),
    click.option(
        "--no-default-policies",
        is_flag=True,
        help=N_("Do not check the policies shipped with lwr (policies/defaults.yaml)."),
    ),
)


def load_rules(policy_dirs: tuple[str, ...], no_defaults: bool) -> tuple[PolicyRule, ...]:
    """Load the rules first: a broken policy file fails before the tenant is read."""
    from reconciler.policy_files import load_policies

    return load_policies(policy_dirs, defaults=not no_defaults)


def echo_policy(report: PolicyReport) -> None:
    """Findings on stderr, for formats whose stdout is a document (JSON), in the reader's
    language (the document itself carries each rule's English message)."""
    from reconciler.i18n import say

    t = messages()
    for finding in report.findings:
        text = t._("Policy {finding}", finding="\n".join(finding.lines(t)))
        click.echo(printable(text), err=True)
    for note in report.notes:
        click.echo(printable(t._("Policy note: {note}", note=say(note, t))), err=True)


def write_markdown_parts(directory: str, parts: list[str]) -> None:
    """DIR/part-N.md for each part; part files of an earlier, longer rendering are removed."""
    folder = files.write_parts(directory, parts, protected_files())
    wrote = messages().n_(
        "Wrote {n} markdown part to {folder}/.",
        "Wrote {n} markdown parts to {folder}/.",
        len(parts),
        folder=str(folder),
    )
    click.echo(printable(wrote), err=True)


def write_output(path: str, text: str) -> None:
    """A user-named output file (--out), written atomically, never onto a tenant or store."""
    files.write_output(path, text, protected_files())


def write_or_echo(text: str, out: str | None, written: str) -> None:
    """`text` into the file --out names, then `written` on stderr; without --out, to stdout."""
    if out:
        write_output(out, text)
        click.echo(printable(written), err=True)
    else:
        click.echo(text, nl=False)


def protected_files(*, with_tenants: bool = True) -> files.Protected:
    """The tenant and state files of the running command (its --tenant and --state, and the
    defaults they fall back to): no output file may replace them. `with_tenants` False: the state
    store's files only (for `tenant init`, which writes the tenant's file itself).

    Read from the click context, so that every command that writes a file protects what it
    was pointed at without each passing its URIs down to where the file is written.
    """
    from reconciler.i18n import Said  # when a file is written: start-up stays light

    params = click.get_current_context().params
    tenants = {params.get("tenant_uri") or "", os.environ.get("LWR_TENANT", DEFAULT_TENANT)}
    databases: list[tuple[Path, str]] = []
    folders: list[tuple[Path, str]] = []
    for uri in sorted(tenants - {""}):
        try:
            path = local_path(uri)
            state = state_for(params.get("state_uri") or os.environ.get("LWR_STATE"), uri)
        except LwrError:
            continue  # a bad URI fails on its own, where the tenant or store is opened
        if path is not None and with_tenants:
            databases.append((path, Said.of("the tenant's file ({uri})", uri=uri)))
        if state.path is not None:
            what = Said.of("a file of the state store ({path})", path=str(state.path))
            databases += [(state.path, what), (state.path.parent / "attested.db", what)]
            folders.append((state.path.parent / f"{state.path.name}.locks", what))
    return files.Protected.of(databases, folders)


def color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def provider_for(
    uri: str, state_uri: str | None = None, *, readonly: bool = False
) -> Iterator[Provider]:
    """The tenant at `uri` for a `with` block (its attested state, if any, at `state_uri`);
    `readonly` for the commands that only read it."""
    from reconciler.providers import open_provider

    provider = open_provider(uri, state_uri, readonly=readonly)
    try:
        yield provider
    finally:
        provider.close()


def state_for(state_uri: str | None, tenant_uri: str) -> StateLocation:
    """--state as given, else the default store of the tenant."""
    from reconciler.store import StateLocation

    return StateLocation.resolve(state_uri, tenant_uri)


@contextmanager
def store_for(
    state_uri: str | None, tenant_uri: str, *, readonly: bool = False
) -> Iterator[StateStore]:
    """The state store for a `with` block, closed on the way out; `readonly` for the commands
    that only read it (an SQLite store must exist then, and nothing is written)."""
    store = state_for(state_uri, tenant_uri).open(readonly=readonly)
    try:
        yield store
    finally:
        store.close()


class _Commands(dict[str, click.Command]):
    """`cli.commands` for code that reads it directly (tests walking every command): loads
    every command module on first full read, or the one module of a name looked up."""

    def _everything(self) -> None:
        from reconciler.cli.lazy import load_all

        load_all()

    def __getitem__(self, name: str) -> click.Command:
        if not dict.__contains__(self, name):
            from reconciler.cli.lazy import load_command_module

            load_command_module(name)
        return dict.__getitem__(self, name)

    def __iter__(self) -> Iterator[str]:
        self._everything()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self._everything()
        return dict.keys(self)

    def values(self) -> Any:
        self._everything()
        return dict.values(self)

    def items(self) -> Any:
        self._everything()
        return dict.items(self)


class LazyGroup(HelpGroup):
    """The `lwr` group: a command's module is imported when the command runs (or help lists
    it), so `lwr --version` and `lwr validate` load only what they use (reconciler.cli.lazy).
    Its help pages are in the run's language (reconciler.cli.helptext)."""

    group_class = HelpGroup  # `tenant`, `lock`, `state`, `audit`: not lazy themselves

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loading = _Commands(self.commands)
        self.commands = self._loading

    def list_commands(self, ctx: click.Context) -> list[str]:
        from reconciler.cli.lazy import COMMANDS

        return sorted({*dict.keys(self._loading), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from reconciler.cli.lazy import load_command_module

        if not dict.__contains__(self._loading, cmd_name):
            load_command_module(cmd_name)  # registers it with @cli.command()
        return dict.get(self._loading, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lwr")
@click.option(
    "--lang",
    type=Choice(["ja", "en"]),
    default=None,
    is_eager=True,  # before --help: `lwr --lang ja --help` is in Japanese
    help=N_(
        "Language of what a person reads (ja, en); default: LWR_LANG, then LC_ALL, "
        "LC_MESSAGES, LANG (ja_JP.UTF-8 is Japanese), else English. JSON output, saved plans "
        "and the audit log are the same in every language."
    ),
)
@click.pass_context
def cli(ctx: click.Context, lang: str | None) -> None:
    """lwr: LINE WORKS external messaging as code (validate, plan, apply).

    Shell completion: `eval "$(lwr completion bash)"` (or zsh, fish).
    """
    from reconciler.i18n import Messages, choose_lang

    # The reader's language for this one run, on the root context (no global state).
    ctx.obj = Messages(choose_lang(lang, os.environ))


def messages() -> Messages:
    """The reader's language of the running command (`--lang`, LWR_LANG, the locale)."""
    from reconciler.i18n import ENGLISH, Messages

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Messages) else ENGLISH


def resolve_tenant_key(tenant_uri: str) -> str:
    """The key a tenant's audit entries are filed under, without opening the tenant
    (reconciler.uris.tenant_key: no request, no private key read)."""
    from reconciler.uris import LINEWORKS, LOCAL, tenant_key

    if not tenant_uri.startswith((LOCAL, LINEWORKS)):
        return tenant_uri  # a key as `lwr lock list` shows it, e.g. of another lwr version
    return tenant_key(tenant_uri)

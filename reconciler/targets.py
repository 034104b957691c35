"""A desired file's `target:`: which tenant of a fleet the file goes to, and nothing else.

`target:` comes from file content (a pull request), so it may only choose *which* tenant:
never an endpoint, a credential, an option or a file outside the directory of `--tenant`.
The URIs themselves are parsed by reconciler.uris.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from reconciler.errors import Refused, UsageError
from reconciler.uris import (
    FILE_TARGET_OPTIONS,
    LINEWORKS,
    LOCAL,
    TENANT_PLACEHOLDER,
    local_path,
    query_pairs,
    redact,
    shown_option,
)

__all__ = ["file_target"]


def file_target(target: object, tenant: str, template: str, where: str) -> str:
    """The tenant URI a desired file of a directory goes to: its `target:`, else `template`
    (--tenant) with {tenant} replaced by the file's domain.

    `target:` comes from file content (a pull request), so it may only choose which tenant:
    Refused (naming the option and `where`, the file's location) for anything else.
    """
    if not (isinstance(target, str) and target):
        if TENANT_PLACEHOLDER not in template:
            from reconciler.i18n import Said  # on failure only: start-up stays light

            raise UsageError(
                Said.of(
                    "no target: in the file and --tenant {template!r} has no "
                    "{{tenant}} placeholder: add target: URI to the file or pass e.g. "
                    "--tenant 'local:tenants/{{tenant}}.db'",
                    template=redact(template),
                )
            )

        uri = template.replace(TENANT_PLACEHOLDER, tenant)
        if uri.startswith(LOCAL):  # a symlink in the checkout (a pull request) could lead away
            _inside_template_directory(
                uri,
                template,
                lambda outside: Refused(
                    _Said.of(
                        "refused: {where}the tenant file {file} leads outside "
                        "{outside}, the directory of --tenant (a symlink?)",
                        where=where,
                        file=uri.removeprefix(LOCAL),
                        outside=str(outside),
                    )
                ),
            )
        return uri
    if target.startswith(LINEWORKS):
        return _lineworks_target(target, tenant, template, where)
    if target.startswith(LOCAL):
        return _local_target(target, template, where)
    raise _refused(
        where,
        _Said.of(
            "{uri!r} is not a tenant URI: use local:PATH or lineworks:?domain_id=…",
            uri=redact(target),
        ),
    )


class _Said:
    """`i18n.Said`, imported only when a refusal is made: start-up stays light."""

    @staticmethod
    def of(message: str, **fields: object) -> str:
        """`Said.of(message, **fields)`."""
        from reconciler.i18n import Said

        return Said.of(message, **fields)


def _refused(where: str, what: str) -> Refused:
    return Refused(_Said.of("refused: {where}target: {what}", where=where, what=what))


def _lineworks_target(target: str, tenant: str, template: str, where: str) -> str:
    try:
        chosen = query_pairs(target)
    except UsageError as exc:
        raise _refused(where, str(exc)) from None
    for key in sorted(chosen):
        if key not in FILE_TARGET_OPTIONS:
            raise _refused(
                where,
                _Said.of(
                    "{option}= cannot come from a desired file: a file's "
                    "target: may only choose which tenant "
                    "(lineworks:?domain_id=…); set it in --tenant or the "
                    "environment instead",
                    option=shown_option(key),
                ),
            )
    if not re.fullmatch(r"[0-9]{1,20}", chosen.get("domain_id", "0")):
        raise _refused(
            where,
            _Said.of(
                "domain_id= must be the Domain ID, a number (shown at the bottom "
                "of the console's left menu)"
            ),
        )
    base: dict[str, str] = {}
    if template.startswith(LINEWORKS):  # the operator's settings, for the tenant chosen
        base = query_pairs(template.replace(TENANT_PLACEHOLDER, tenant))
    base.update({k: v for k, v in chosen.items() if v})
    return LINEWORKS + (f"?{urlencode(base)}" if base else "")


def _local_target(target: str, template: str, where: str) -> str:
    """A local target must be a file in the directory of the local --tenant template (after
    resolving symlinks and `..`): a plan reads, and an apply writes `state.db`, only there."""
    if not template.startswith(LOCAL):
        raise _refused(
            where,
            _Said.of(
                "{target!r}: a local: target needs a local: --tenant (template), "
                "whose directory it must be in",
                target=target,
            ),
        )
    _inside_template_directory(
        target,
        template,
        lambda outside: _refused(
            where,
            _Said.of(
                "{target!r} is outside {outside}, the directory of --tenant: a file may only "
                "choose a tenant file in there",
                target=target,
                outside=str(outside),
            ),
        ),
    )
    return target


def _inside_template_directory(uri: str, template: str, refuse: Callable[[Path], Refused]) -> None:
    """Raise `refuse(directory)` unless the local `uri` resolves inside the directory of the
    local `template` (the part before any {tenant})."""
    path, fixed = local_path(uri), local_path(template)
    assert path is not None and fixed is not None
    text = str(fixed)
    if TENANT_PLACEHOLDER in text:
        prefix = text[: text.index(TENANT_PLACEHOLDER)]
        directory = Path(prefix[: prefix.rfind("/") + 1] or ".")
    else:
        directory = fixed.parent
    if not path.resolve().is_relative_to(directory.resolve()):
        raise refuse(directory)

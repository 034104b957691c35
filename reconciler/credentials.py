"""Where a `lineworks:` tenant's settings and secrets come from, and what makes a secret file
usable: the URI query, then the environment (LW_*), then a credentials file only its owner
can read. Below the providers, so a tenant's identity (reconciler.uris.tenant_key) and the
audit key file are checked without importing a provider.

Never echoes a line of a secret file: it may hold a secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from reconciler.errors import FileError, UsageError
from reconciler.files import open_input, reason
from reconciler.i18n import N_, Msg, Said
from reconciler.uris import DEFAULT_API_BASE, check_endpoint, lineworks_query

__all__ = ["ENV", "check_private_file", "identity", "read_private_file", "settings"]

# URI query key → environment variable; the query wins over the environment.
ENV = {
    "client_id": "LW_CLIENT_ID",
    "client_secret": "LW_CLIENT_SECRET",
    "service_account": "LW_SERVICE_ACCOUNT",
    "private_key_file": "LW_PRIVATE_KEY_FILE",
    "domain_id": "LW_DOMAIN_ID",
    "api_base": "LW_API_BASE",
    "auth_url": "LW_AUTH_URL",
    "domain": "LW_DOMAIN",
    "rate": "LW_RATE_LIMIT",
    "credentials": "LW_CREDENTIALS_FILE",
}


def identity(uri: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(domain id, API base) of a `lineworks:` URI: what its key is made of, read without the
    private key and without a request (reconciler.uris.tenant_key)."""
    values = settings(uri, os.environ if environ is None else environ)
    if not values.get("domain_id"):
        raise UsageError(
            Said.of(
                "the lineworks: tenant needs LW_DOMAIN_ID (environment, a credentials "
                "file named by LW_CREDENTIALS_FILE, or ?domain_id= in the URI)"
            )
        )
    return values["domain_id"], check_endpoint("api_base", values.get("api_base", DEFAULT_API_BASE))


def settings(uri: str, env: Mapping[str, str]) -> dict[str, str]:
    """The URI's query, completed from the environment, then from the credentials file;
    UsageError for a secret in the URI or a credentials file others may read."""
    values = lineworks_query(uri)
    for key, var in ENV.items():
        if key not in values and env.get(var):
            values[key] = env[var]
    if "credentials" in values:
        for key, value in _credentials_file(Path(values.pop("credentials"))).items():
            values.setdefault(key, value)
    return values


def read_private_file(path: Path, what: str) -> bytes:
    """A secret file's bytes (`what`: "audit key file", …), read like any input the user
    names (files.open_input: a regular file, checked on the open descriptor, so the file
    checked is the file read) and refused when group or others may read or write it."""
    with _private(path, what) as file:
        try:
            return file.read()
        except OSError as exc:
            raise UsageError(_unreadable(what, path, reason(exc))) from None


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that group or others may read (or that is not a regular file),
    for a caller that reads it its own way."""
    with _private(path, what):
        pass


@contextmanager
def _private(path: Path, what: str) -> Iterator[BinaryIO]:
    try:
        with open_input(path) as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & 0o077:
                raise UsageError(
                    Said.of(
                        "refusing to use the {what} {path}: it is readable or writable by "
                        "group or others (mode {mode}); run `chmod 600 {path}`",
                        what=Msg.of(what),
                        path=str(path),
                        mode=f"{stat.S_IMODE(mode):04o}",
                    )
                )
            yield file
    except FileError as exc:
        raise UsageError(_unreadable(what, path, exc.reason)) from None


#: The secret files `what` names, said in the reader's language.
_WHAT = (N_("credentials file"), N_("private key file"), N_("audit key file"))


def _unreadable(what: str, path: Path, why: str) -> Said:
    return Said.of(
        "cannot read the {what} {path}: {reason}", what=Msg.of(what), path=str(path), reason=why
    )


def _credentials_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (LW_CLIENT_ID=…, # comments), in a file only its owner can read."""
    data = read_private_file(path, "credentials file")
    by_var = {var: key for key, var in ENV.items()}
    values: dict[str, str] = {}
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(
            Said.of("cannot read the credentials file {path}: not UTF-8 text", path=str(path))
        ) from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        var, sep, value = line.partition("=")
        if not sep or var.strip() not in by_var:
            # Never echo the line: it may hold a secret.
            raise UsageError(
                Said.of(
                    "{path}:{line}: expected one of {names}=…",
                    path=str(path),
                    line=number,
                    names=", ".join(sorted(by_var)),
                )
            )
        values[by_var[var.strip()]] = value.strip().strip('"')
    return values

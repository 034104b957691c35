"""Where a `lineworks:` tenant's settings and secrets come from, and what makes a secret file
usable: the URI query, then the environment (LW_*), then a credentials file only its owner
can read. Below the providers, so a tenant's identity (reconciler.uris.tenant_key) and the
audit key file are checked without importing a provider.

Never echoes a line of a secret file: it may hold a secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.uris import DEFAULT_API_BASE, check_endpoint, lineworks_query

__all__ = ["ENV", "check_private_file", "identity", "settings"]

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
            "the lineworks: tenant needs LW_DOMAIN_ID (environment, a credentials "
            "file named by LW_CREDENTIALS_FILE, or ?domain_id= in the URI)"
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


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that group or others may read (or that is not a regular file)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"the {what} {path} is not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"refusing to use the {what} {path}: it is readable or writable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )


def _credentials_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (LW_CLIENT_ID=…, # comments), in a file only its owner can read."""
    check_private_file(path, "credentials file")
    by_var = {var: key for key, var in ENV.items()}
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read the credentials file {path}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        var, sep, value = line.partition("=")
        if not sep or var.strip() not in by_var:
            # Never echo the line: it may hold a secret.
            raise UsageError(f"{path}:{number}: expected one of {', '.join(sorted(by_var))}=…")
        values[by_var[var.strip()]] = value.strip().strip('"')
    return values

"""Tenant and state URIs: what they say, which tenant they name, what of them may be shown.

Tenants are `local:PATH` (an embedded SQLite tenant) or `lineworks:[?KEY=VALUE&…]`; states
are `local:PATH` (SQLite) or `postgresql://…` (also `postgres://`). This module owns:

- parsing: `local_path`, `lineworks_query`, `state_target`, `check_endpoint`;
- trust: a URI on the command line (or LWR_TENANT/LWR_STATE) is the operator's and may say
  anything but a secret; a desired file's `target:` (`reconciler.targets.file_target`) may only
  choose *which* tenant, so that a pull request cannot send credentials, requests or files anywhere;
- identity: `tenant_key` (made by `local_key`, `lineworks_key`), the resolved provider key (a
  local path with symlinks, `..` and `./` resolved; a LINE WORKS domain id and API host)
  under which lock, journal and audit live;
- redaction: `redact` for any URI before it is shown, `scrub` for text that may quote one
  (reconciler.redaction, re-exported here).

Nothing heavy is imported here: the lineworks settings are read lazily (reconciler.credentials).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from reconciler.errors import UsageError
from reconciler.redaction import POSTGRES_SCHEMES
from reconciler.redaction import redact as redact  # re-exported: callers import both from here
from reconciler.redaction import scrub as scrub

LOCAL = "local:"
LINEWORKS = "lineworks:"
DEFAULT_TENANT = "local:.lwr/tenant.db"
DEFAULT_API_BASE = "https://www.worksapis.com/v1.0"
DEFAULT_AUTH_URL = "https://auth.worksmobile.com/oauth2/v2.0/token"
TENANT_PLACEHOLDER = "{tenant}"

#: Options of a `lineworks:` URI given by the operator (command line, LWR_TENANT).
LINEWORKS_OPTIONS = frozenset(
    {
        "client_id",
        "service_account",
        "private_key_file",
        "domain_id",
        "api_base",
        "auth_url",
        "domain",
        "rate",
        "credentials",
        "rate_window",
        "timeout",
        "max_retry_time",
        "poll_timeout",
        "scope",
        "state_dir",
    }
)
#: What a desired file's `target:` may say of a lineworks tenant: which domain, nothing else.
#: Not `domain` (it would make any directory pass the file's `tenant:` check), not `rate` or
#: the timeouts (the app's request budget is the operator's), not an endpoint, key, credentials
#: file or directory (each would send secrets, requests or files where the file's author says).
FILE_TARGET_OPTIONS = frozenset({"domain_id"})
#: Never taken from any URI: command lines show in `ps`, shell history and CI logs.
SECRET_OPTIONS = frozenset({"client_secret"})
_POSTGRES = POSTGRES_SCHEMES


# ------------------------------------------------------------------------------ parsing


def local_path(uri: str) -> Path | None:
    """The file behind a `local:` URI (as written), or None for other kinds."""
    if not uri.startswith(LOCAL):
        return None
    path = uri.removeprefix(LOCAL)
    if not path:
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(Said.of("local: URI needs a path, e.g. local:.lwr/tenant.db"))
    return Path(path)


def is_postgres_url(uri: str) -> bool:
    """Whether a --state value names a PostgreSQL database."""
    return uri.startswith(_POSTGRES)


def lineworks_query(uri: str) -> dict[str, str]:
    """The options of a `lineworks:` URI from the operator; UsageError for a secret, an
    unknown or repeated option, or anything but a query after `lineworks:`."""
    values = query_pairs(uri)
    secret = sorted(SECRET_OPTIONS & set(values))
    if secret:
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(
            Said.of(
                "a {option} is never taken from a URI (command "
                "lines show in ps and CI logs): set LW_CLIENT_SECRET, or put it in a "
                "0600 credentials file named by LW_CREDENTIALS_FILE",
                option=secret[0].replace("_", " "),
            )
        )
    unknown = sorted(set(values) - LINEWORKS_OPTIONS)
    if unknown:
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(
            Said.of(
                "unknown lineworks: URI option(s) {options}; known: {known}",
                options=", ".join(map(shown_option, unknown)),
                known=", ".join(sorted(LINEWORKS_OPTIONS)),
            )
        )
    return {k: v for k, v in values.items() if v}


def shown_option(key: str) -> str:
    """An option name fit for a message: a pasted value (a secret?) or odd text is not."""
    return key if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,39}", key) else "(an option not shown)"


def query_pairs(uri: str) -> dict[str, str]:
    """The query of a `lineworks:` URI, keys decoded; a key given twice is ambiguous."""
    rest = uri.removeprefix(LINEWORKS).lstrip("/")
    if rest and not rest.startswith("?"):
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(
            Said.of(
                "unexpected text after lineworks: in {uri!r}: use lineworks: "
                "or lineworks:?domain_id=…&rate=60 (credentials belong in the "
                "environment)",
                uri=redact(uri),
            )
        )
    values: dict[str, str] = {}
    for key, value in parse_qsl(rest.removeprefix("?"), keep_blank_values=True):
        if key in values:
            from reconciler.i18n import Said  # on failure only: start-up stays light

            raise UsageError(
                Said.of("lineworks: URI option {option} is given twice", option=shown_option(key))
            )
        values[key] = value
    return values


def check_endpoint(name: str, url: str) -> str:
    """An `api_base`/`auth_url` that can be requested: http(s), a host, no user or password.

    Returns it without a trailing slash; UsageError naming the option otherwise.
    """
    example = DEFAULT_API_BASE if name == "api_base" else DEFAULT_AUTH_URL

    def bad(why: str) -> UsageError:
        from reconciler.i18n import Said  # on failure only: start-up stays light

        return UsageError(
            Said.of(
                "lineworks: {name} {url!r} is not a usable http(s) URL: {why}; e.g. {example}",
                name=name,
                url=redact(url),
                why=why,
                example=example,
            )
        )

    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port (or IPv6 host) raises ValueError here, not at request time
    except ValueError:  # its text can quote a piece of the URL: not shown
        raise bad("its host or port cannot be parsed") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise bad("it must start with https:// (or http:// for a test server)")
    if not parts.hostname:
        raise bad("it names no host")
    if parts.username is not None or parts.password is not None:
        raise bad("it must not carry a user or password (credentials belong in the environment)")
    return url.rstrip("/")


def check_postgres_url(url: str) -> str:
    """A state URL that libpq and lwr read alike; UsageError (never quoting a password)
    for one whose password has a raw `@`, `/`, `?` or `#` (each reader splits it elsewhere,
    and a piece of the password could end up in a message or a DNS query)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad host or port raises ValueError
    except ValueError:
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(
            Said.of(
                "state URL {url!r} is not a valid URL: check the host and port, and "
                "percent-encode @ / ? # in a password as %40 %2F %3F %23",
                url=redact(url),
            )
        ) from None
    if "#" in url or parts.netloc.count("@") > 1 or ("@" not in parts.netloc and "@" in parts.path):
        from reconciler.i18n import Said  # on failure only: start-up stays light

        raise UsageError(
            Said.of(
                "state URL {url!r} is ambiguous: "
                "percent-encode @ / ? # in a password as %40 %2F %3F %23",
                url=redact(url),
            )
        )
    return url


def split_postgres_url(url: str) -> tuple[str, str | None]:
    """(what libpq connects to, lwr's own `?schema=` or None) of a state URL, checked first."""
    parts = urlsplit(check_postgres_url(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def state_target(state_uri: str | None, tenant_uri: str) -> tuple[Path | None, str | None]:
    """--state as (SQLite path, PostgreSQL URL), one of them set: unset means `state.db`
    beside a local tenant (resolved, so every spelling of it shares one store), else
    `.lwr/state.db`."""
    if state_uri:
        if is_postgres_url(state_uri):
            return None, check_postgres_url(state_uri)
        path = local_path(state_uri)
        if path is None:
            from reconciler.i18n import Said  # on failure only: start-up stays light

            raise UsageError(
                Said.of(
                    "unsupported state URI {uri!r}: expected local:PATH "
                    "or postgresql://USER@HOST/DB",
                    uri=redact(state_uri),
                )
            )
        return path, None
    tenant_file = local_path(tenant_uri)
    if tenant_file is None:
        return Path(".lwr/state.db"), None
    return tenant_file.resolve().parent / "state.db", None


# ------------------------------------------------------------------------------ identity


def tenant_key(uri: str, environ: Mapping[str, str] | None = None) -> str:
    """The tenant's identity for lock, journal, audit and "one file per tenant", without
    opening it: `local:` + the resolved absolute path, or `lineworks:DOMAIN_ID[@HOST]`."""
    path = local_path(uri)
    if path is not None:
        return local_key(path.resolve())
    if uri.startswith(LINEWORKS):
        from reconciler.credentials import identity

        return lineworks_key(*identity(uri, environ))
    from reconciler.i18n import Said  # on failure only: start-up stays light

    raise UsageError(
        Said.of("unknown tenant URI {uri!r}: expected local:PATH or lineworks:", uri=redact(uri))
    )


def local_key(path: Path) -> str:
    """The identity of the local tenant in the file `path` (resolved by whoever opens it)."""
    return f"{LOCAL}{path}"


def lineworks_key(domain_id: str, api_base: str) -> str:
    """`lineworks:DOMAIN_ID`, plus `@HOST[:PORT]` when the API is not LINE WORKS' own."""
    host = _host_port(api_base)
    if host == _host_port(DEFAULT_API_BASE):
        return f"{LINEWORKS}{domain_id}"
    return f"{LINEWORKS}{domain_id}@{host}"


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if parts.port in (None, default) else f"{host}:{parts.port}"

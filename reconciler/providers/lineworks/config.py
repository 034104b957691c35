"""Settings of a `lineworks:` tenant: from the URI query (reconciler.uris parses it), the
environment and a 0600 credentials file (gathered by reconciler.credentials).

Secrets (client secret, private key) come only from the environment or 0600 files, and are
never part of repr(), the provider key or a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.credentials import ENV, check_private_file, settings
from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.uris import (
    DEFAULT_API_BASE,
    DEFAULT_AUTH_URL,
    check_endpoint,
    is_postgres_url,
    lineworks_key,
    local_path,
)

#: Requests per minute per API operation: 240 on paid plans (docs), 60 on the free plan.
DEFAULT_RATE = 240

_REQUIRED = ("client_id", "client_secret", "service_account", "private_key_file", "domain_id")
_NUMBERS = ("rate", "rate_window", "timeout", "max_retry_time", "poll_timeout")


@dataclass(frozen=True)
class LineWorksConfig:
    """Everything needed to talk to one LINE WORKS domain."""

    client_id: str
    service_account: str
    domain_id: str
    client_secret: str = field(repr=False)
    private_key: str = field(repr=False)  # PEM text of the service account's key
    api_base: str = DEFAULT_API_BASE
    auth_url: str = DEFAULT_AUTH_URL
    scope: str = "user"  # `user` covers reads and the link APIs (OAuth Scopes page)
    domain: str | None = None  # login domain (example.co.jp); inferred from the directory
    rate: int = DEFAULT_RATE  # requests per `rate_window` per API operation
    rate_window: float = 60.0  # seconds; smaller only for emulator tests and benches
    timeout: float = 30.0  # seconds per HTTP request
    max_retry_time: float = 120.0  # seconds of retrying one request before giving up
    poll_timeout: float = 300.0  # seconds to wait for one asynchronous (202) operation
    state_dir: Path = Path(".lwr")  # where the attested state lives (beside the journal)
    #: A postgresql:// state: the attested state lives in that database instead.
    state_url: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """Stable tenant identity for lock, journal and audit: no secret in it."""
        return lineworks_key(self.domain_id, self.api_base)

    @classmethod
    def from_uri(
        cls, uri: str, environ: Mapping[str, str] | None = None, state: str | None = None
    ) -> LineWorksConfig:
        """`lineworks:` or `lineworks:?domain_id=…&rate=60`, completed from the environment.

        `state`: the --state given on the command line, else $LWR_STATE; the attested state
        lives there too.
        """
        env = os.environ if environ is None else environ
        state = state or env.get("LWR_STATE", "")
        values = settings(uri, env)
        missing = [k for k in _REQUIRED if not values.get(k)]
        if missing:
            names = ", ".join(ENV[k] for k in missing)
            raise UsageError(
                Said.of(
                    "the lineworks: tenant needs {names} (environment or a 0600 "
                    "credentials file named by LW_CREDENTIALS_FILE; all but the "
                    "secret may also be in the URI query); see docs/lineworks.md",
                    names=names,
                )
            )
        numbers = {k: _number(k, values[k]) for k in _NUMBERS if k in values}
        return cls(
            client_id=values["client_id"],
            service_account=values["service_account"],
            domain_id=values["domain_id"],
            client_secret=values["client_secret"],
            private_key=read_private_key(Path(values["private_key_file"])),
            api_base=check_endpoint("api_base", values.get("api_base", DEFAULT_API_BASE)),
            auth_url=check_endpoint("auth_url", values.get("auth_url", DEFAULT_AUTH_URL)),
            scope=values.get("scope", "user"),
            domain=values.get("domain") or None,
            rate=int(numbers.get("rate", DEFAULT_RATE)),
            rate_window=float(numbers.get("rate_window", 60.0)),
            timeout=float(numbers.get("timeout", 30.0)),
            max_retry_time=float(numbers.get("max_retry_time", 120.0)),
            poll_timeout=float(numbers.get("poll_timeout", 300.0)),
            state_dir=Path(values["state_dir"]) if values.get("state_dir") else _state_dir(state),
            state_url=state if is_postgres_url(state) else None,
        )


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            Said.of(
                "lineworks: option {option} must be a number, not {text!r}", option=key, text=text
            )
        ) from None
    if value <= 0:
        raise UsageError(Said.of("lineworks: option {option} must be positive", option=key))
    return value


def _state_dir(state: str) -> Path:
    """Beside the journal: the directory of the state (local:PATH), else .lwr."""
    path = local_path(state)
    return path.parent if path is not None else Path(".lwr")


def read_private_key(path: Path) -> str:
    """The service account's PEM private key, from a file only its owner can read."""
    check_private_file(path, "private key file")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None)
        raise UsageError(
            Said.of("cannot read the private key file {path}: {reason}", path=str(path), reason=why)
            if why
            else Said.of(
                "cannot read the private key file {path}: not a PEM text file", path=str(path)
            )
        ) from None
    if "PRIVATE KEY-----" not in text:
        raise UsageError(
            Said.of(
                "{path} does not hold a PEM private key (download it again from the "
                "Developer Console: API 2.0 > your app > Private Key)",
                path=str(path),
            )
        )
    return text

"""Tenant URIs → providers. `local:PATH` is the embedded tenant; more kinds plug in here."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import UsageError
from reconciler.providers.base import Provider

DEFAULT_TENANT = "local:.lwr/tenant.db"


def local_path(uri: str) -> Path | None:
    """The file behind a `local:` URI, or None for other kinds."""
    if not uri.startswith("local:"):
        return None
    path = uri.removeprefix("local:")
    if not path:
        raise UsageError("local: tenant URI needs a path, e.g. local:.lwr/tenant.db")
    return Path(path)


def open_provider(uri: str, state_uri: str | None = None, *, readonly: bool = False) -> Provider:
    """Open the tenant named by `uri` (SPEC §5); `state_uri` (--state) is where a provider
    that keeps attested state keeps it (default $LWR_STATE). `readonly`: for commands that
    only read (a local tenant is then opened without writing or creating any file)."""
    path = local_path(uri)
    if path is not None:
        from reconciler.providers.local import LocalTenant

        return LocalTenant.open(path, readonly=readonly)
    kind = uri.split(":", 1)[0]
    if kind == "lineworks":
        from reconciler.providers.lineworks import LineWorksTenant

        return LineWorksTenant.open(uri, state_uri)
    raise UsageError(f"unknown tenant URI {uri!r}: expected local:PATH or lineworks:")

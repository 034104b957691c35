"""Tenant URIs → providers. `local:PATH` is the embedded tenant; more kinds plug in here.

What a URI means, and who it names, is reconciler.uris; this opens what it names.
"""

from __future__ import annotations

from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.providers.base import Provider
from reconciler.uris import DEFAULT_TENANT, LINEWORKS, local_path, redact

__all__ = ["DEFAULT_TENANT", "local_path", "open_provider"]


def open_provider(uri: str, state_uri: str | None = None, *, readonly: bool = False) -> Provider:
    """Open the tenant at `uri` (docs/contract.md#tenants); `state_uri` (--state): where a provider
    that keeps attested state keeps it (default $LWR_STATE). `readonly`: for commands that
    only read (a local tenant is then opened without writing or creating any file)."""
    path = local_path(uri)
    if path is not None:
        from reconciler.providers.local import LocalTenant

        # Resolved: the provider key is the same however the path is spelled (symlinks too).
        return LocalTenant.open(path.resolve(), readonly=readonly)
    if uri.startswith(LINEWORKS):
        from reconciler.providers.lineworks import LineWorksTenant

        return LineWorksTenant.open(uri, state_uri, readonly=readonly)
    raise UsageError(
        Said.of("unknown tenant URI {uri!r}: expected local:PATH or lineworks:", uri=redact(uri))
    )

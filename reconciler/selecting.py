"""A desired file's member selectors against its tenant: the org chart is read only when the
file uses a selector, and a tenant kind that cannot read one says so.

reconciler.selectors resolves the names; it is imported here only for a file that needs it,
so a plain list (and `lwr plan` start-up) costs nothing more.
"""

from __future__ import annotations

from reconciler.desired import check_against_tenant
from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.model import DesiredState
from reconciler.providers.base import Provider

__all__ = ["check_desired", "with_selectors"]


def with_selectors(
    desired: DesiredState, provider: Provider, directory: frozenset[str]
) -> DesiredState:
    """`desired` with its org-unit and group selectors resolved against the tenant's org
    chart, read only when the file uses one; InputError for a name the directory lacks."""
    if not desired.uses_selectors:
        return desired
    if not provider.READS_ORG_CHART:
        kind = provider.key.partition(":")[0]
        raise UsageError(
            Said.of(
                "{source} selects members by org unit or group, but a {kind}: tenant ({key}) "
                "cannot read its org chart; list the members in include",
                source=desired.source,
                kind=kind,
                key=provider.key,
            )
        )
    from reconciler.selectors import resolve  # only for files that use selectors

    named = frozenset(
        group
        for spec in desired.channels.values()
        if spec.members is not None
        for group in spec.members.include_groups
    )
    return resolve(desired, provider.org_chart(groups=named), directory)


def check_desired(desired: DesiredState, provider: Provider) -> DesiredState:
    """`validate --tenant`: the domain, the members and the selectors against the tenant."""
    directory = provider.directory()
    check_against_tenant(desired, provider.domain(), directory)
    return with_selectors(desired, provider, directory)

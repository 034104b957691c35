"""A desired file's member selectors against its tenant: the org chart is read only when the
file uses a selector, and a tenant kind that cannot read one says so.

reconciler.selectors resolves the names; it is imported here only for a file that needs it,
so a plain list (and `lwr plan` start-up) costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.desired import check_against_tenant
from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.model import ChannelName, DesiredState
from reconciler.providers.base import Provider

if TYPE_CHECKING:
    from reconciler.store import StateLocation
    from reconciler.store.base import StateStore

__all__ = [
    "LastSelection",
    "StateAt",
    "check_desired",
    "last_selection_at",
    "remember",
    "with_previous",
    "with_selectors",
]

#: The last apply's selection documents of a tenant (StateStore.last_selection), by channel.
LastSelection = Callable[[str], Mapping[str, bytes]]


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


def with_previous(
    desired: DesiredState, last: LastSelection | None, tenant_key: str
) -> DesiredState:
    """`desired` (resolved) with what each selector selected at the last apply, so a removal
    can say whom the member left (reconciler.selection); read only for a file with selectors."""
    if last is None or not desired.uses_selectors:
        return desired
    documents = last(tenant_key)
    if not documents:
        return desired
    from reconciler.selection import decode

    channels = dict(desired.channels)
    for channel, spec in desired.channels.items():
        members, document = spec.members, documents.get(channel.value)
        if members is None or not members.uses_selectors or document is None:
            continue
        previous = tuple((rule, name, found) for (rule, name), found in decode(document).items())
        channels[channel] = replace(spec, members=replace(members, previous=previous))
    return replace(desired, channels=channels)


#: Where the state store is, resolved only when a file with selectors asks (a plain list
#: does not even import reconciler.store).
StateAt = Callable[[], "StateLocation"]


def last_selection_at(state_at: StateAt | None) -> LastSelection | None:
    """The last apply's selection in the store `state_at` gives, opened read-only and only
    when asked (a file with selectors); nothing when the store was never created."""
    if state_at is None:
        return None

    def read(tenant_key: str) -> Mapping[str, bytes]:
        state = state_at()
        if not state.exists:
            return {}
        from contextlib import closing

        with closing(state.open(readonly=True)) as store:
            return store.last_selection(tenant_key)

    return read


def remember(store: StateStore, tenant_key: str, desired: DesiredState, run_id: str | None) -> None:
    """Keep what the selectors of `desired` (resolved) selected as the last apply's; nothing
    for a file without selectors."""
    if not desired.uses_selectors:
        return
    from reconciler.selection import encode, selection_of

    documents = {
        channel.value: encode(selection_of(spec.members))
        for channel, spec in sorted(desired.channels.items(), key=lambda i: _ORDER[i[0]])
        if spec.members is not None and spec.members.uses_selectors
    }
    store.record_selection(tenant_key, documents, run_id)


_ORDER = {c: n for n, c in enumerate(ChannelName)}

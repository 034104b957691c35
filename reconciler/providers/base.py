"""The Provider protocol: how the reconciler reads a tenant and applies changes to it.

A provider is the only code that touches the outside world. A new tenant kind is one class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from reconciler.actions import Action, Change, Execution
from reconciler.model import TenantState


class Provider(Protocol):
    """A tenant the reconciler can read and write."""

    #: Stable identity of the tenant for locks, journal and audit (e.g. "local:/abs/tenant.db").
    key: str
    #: Most changes `apply` may receive in one call; it applies them all or none where it can.
    batch_size: int

    def read(self) -> TenantState:
        """Read the whole page and the member directory; raise TenantError on any failure.

        A partial read must raise, never return less: a missing list would plan removals.
        """
        ...

    def directory(self) -> frozenset[str]:
        """Login emails of every member of the tenant (for `validate --tenant`)."""
        ...

    def domain(self) -> str:
        """The tenant's domain, compared with the file's `tenant:`."""
        ...

    def execution(self, action: Action) -> Execution:
        """How this provider carries out `action`: by API, locally, or as a manual step."""
        ...

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply changes in the given order; all-or-nothing where the tenant allows.

        Raise TenantRuleError when the tenant's rules refuse a change, TenantError otherwise.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...

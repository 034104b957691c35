"""The Provider base class: how the reconciler reads a tenant and applies changes to it.

A provider is the only code that touches the outside world. A new tenant kind is one
subclass. What a provider can do beyond read and apply is declared as a class attribute with
a default here (as octoDNS's SUPPORTS), never discovered with isinstance or hasattr; the
optional methods have defaults that do nothing, so callers need not ask first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from reconciler.actions import Action, Change, Execution
from reconciler.errors import UsageError
from reconciler.model import TenantState

if TYPE_CHECKING:
    from reconciler.model import DesiredState

__all__ = ["CONSOLE_PAGE", "ConfirmChange", "Provider"]

#: Where the external-messaging settings are in the LINE WORKS admin console.
CONSOLE_PAGE = "Admin > Service > Message > External messaging"
#: What a provider calls for one manual change during apply: True once an admin has done it.
#: It may raise to stop the apply there (reconciler.manual's handlers raise
#: ManualStepsPending, naming the step and what to do).
ConfirmChange = Callable[[Change], bool]


class Provider:
    """A tenant the reconciler can read and write."""

    #: Stable identity of the tenant for locks, journal and audit (e.g. "local:/abs/tenant.db").
    key: str
    #: Most changes `apply` may receive in one call; it applies them all or none where it can.
    batch_size: int

    # -- capabilities: declared, with defaults ------------------------------------------------

    #: The tenant has settings its API cannot read: some changes are manual steps an admin
    #: confirms (set_manual_handler), values come from lwr's attested state (provenance,
    #: attest) and plans carry notes saying so (plan_notes).
    ATTESTED: ClassVar[bool] = False

    # -- what every provider does -------------------------------------------------------------

    def read(self) -> TenantState:
        """Read the whole page and the member directory; raise TenantError on any failure.

        A partial read must raise, never return less: a missing list would plan removals.
        """
        raise NotImplementedError

    def reread(self, *, waited: bool) -> TenantState:
        """The tenant read again under the lock, to see what changed since the plan.

        `waited`: something (a confirmation prompt) stood between plan and apply. A provider
        whose read is costly may keep, when nothing waited, a part only edits outside lwr
        can change (lwr's own applies take the lock first); by default all is read again.
        """
        return self.read()

    def directory(self) -> frozenset[str]:
        """Login emails of every member of the tenant (for `validate --tenant`)."""
        raise NotImplementedError

    def domain(self) -> str:
        """The tenant's domain, compared with the file's `tenant:`."""
        raise NotImplementedError

    def execution(self, action: Action) -> Execution:
        """How this provider carries out `action`: by API, locally, or as a manual step."""
        raise NotImplementedError

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply changes in the given order; all-or-nothing where the tenant allows.

        Raise TenantRuleError when the tenant's rules refuse a change, TenantError otherwise.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files."""

    # -- optional (ATTESTED providers override them) ------------------------------------------

    def set_manual_handler(self, handler: ConfirmChange | None) -> None:
        """Who confirms manual steps during apply (None: refuse them); a provider without
        manual steps has nobody to ask."""

    def provenance(self) -> dict[str, str]:
        """Where each value of the last read came from: `read`, `applied`, `attested` or
        `unknown`, keyed `directory` and `<channel>.<field>`; empty when all is read."""
        return {}

    def plan_notes(self, desired: DesiredState, changes: Sequence[Change]) -> tuple[str, ...]:
        """What a reviewer must know about a plan for this tenant (not read, API time)."""
        return ()

    def attest(self, desired: DesiredState, actor: str) -> list[str]:
        """Record the file's managed values as what the console shows now; return them."""
        raise UsageError(f"{self.key} is read directly; there is nothing to attest")

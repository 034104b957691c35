"""The Provider base class: how the reconciler reads a tenant and applies changes to it.

A provider is the only code that touches the outside world. A new tenant kind is one
subclass. What a provider can do beyond read and apply is declared as a class attribute with
a default here (as octoDNS's SUPPORTS), never discovered with isinstance or hasattr; the
optional methods have defaults that do nothing, so callers need not ask first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from reconciler.actions import Action, Change, Execution
from reconciler.closing import Closing
from reconciler.errors import TenantError, UsageError
from reconciler.i18n import N_, Said
from reconciler.model import TenantState

if TYPE_CHECKING:
    from reconciler.model import DesiredState
    from reconciler.orgchart import OrgChart

__all__ = ["CONSOLE_PAGE", "BatchOutcome", "BatchStopped", "ConfirmChange", "Provider", "Refusal"]

#: Where the external-messaging settings are in the LINE WORKS admin console.
#: N_: English here; said in the reader's language where a message names it.
CONSOLE_PAGE = N_("Admin > Service > Message > External messaging")
#: What a provider calls for one manual change during apply: True once an admin has done it.
#: It may raise to stop the apply there (reconciler.manual's handlers raise
#: ManualStepsPending, naming the step and what to do).
ConfirmChange = Callable[[Change], bool]


@dataclass(frozen=True)
class Refusal:
    """The tenant refused one change and nothing of it took effect.

    `permanent`: no retry through this provider can succeed (the LINE WORKS API never links
    a member whose name holds an emoji); an admin must make the change in the console, and
    the next plan lists it as a manual step. Otherwise fixing the cause and applying again may.
    """

    change_id: str
    reason: str
    permanent: bool = False


@dataclass(frozen=True)
class BatchOutcome:
    """What became of each change of one batch: applied (took effect) or refused.

    A change in neither list was not attempted (the provider stopped at a refusal when
    asked to stop there).
    """

    applied: tuple[str, ...] = ()
    refused: tuple[Refusal, ...] = field(default=())


class BatchStopped(TenantError):
    """A batch stopped part-way on an error that is not a refusal of one change (a timeout,
    a manual step nobody confirmed): `done` says what took effect before it, `cause` why,
    `change_id` (when known) the change it failed on."""

    def __init__(self, done: BatchOutcome, cause: Exception, change_id: str | None = None) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.done, self.cause, self.change_id = done, cause, change_id


class Provider(Closing):
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
    #: The tenant can say how its directory is structured (org units, groups: org_chart),
    #: which member selectors in a desired file need.
    READS_ORG_CHART: ClassVar[bool] = False

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

    def org_chart(self, *, groups: frozenset[str] | None = None) -> OrgChart:
        """Org units and groups with their members (READS_ORG_CHART providers); read only
        when a desired file uses a member selector. Raise TenantError on any failure.

        `groups`: the group names the caller needs members of (None: every group). A
        provider may read just those (and the groups within them); the others it lists are
        then in `unread_groups`, by name only."""
        raise UsageError(Said.of("{tenant} cannot read org units or groups", tenant=self.key))

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

    def apply_each(self, changes: Sequence[Change], *, keep_going: bool = True) -> BatchOutcome:
        """Apply changes in the given order, reporting each: the executor's entry point.

        A change the tenant refuses is reported (`BatchOutcome.refused`), and the others go on
        (`keep_going`; the executor never puts two phases in one batch, so no change of a
        batch depends on another) or stop there, unattempted. Any other failure raises:
        TenantError when nothing of the batch took effect, BatchStopped with what did.
        This default, for an all-or-nothing provider, applies the batch or raises.
        """
        self.apply(changes)
        return BatchOutcome(applied=tuple(c.id for c in changes))

    def lane(self, change: Change) -> str | None:
        """The queue `change` runs in: changes of different lanes of one phase are
        independent and may run side by side (the executor then batches up to batch_size of
        each lane together). None, the default: one queue, strictly in order."""
        return None

    def estimate(self, changes: Sequence[Change]) -> float | None:
        """Seconds applying `changes` takes by this provider's model (a rate-limited API),
        for apply's ETA; None, the default: unknown, the ETA follows the observed rate."""
        return None

    def execution_of(self, change: Change) -> Execution:
        """How this provider carries out this one change: as planned from its action, or
        `manual` where the tenant refused it permanently before (see Refusal.permanent)."""
        return change.execution

    def close(self) -> None:
        """Release connections and files (also at the end of a `with` block)."""

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

    def contradicted(self, state: TenantState) -> tuple[str, ...]:
        """Where the tenant's own reads contradict the attested part of `state` (last read),
        one line each; () where nothing can be checked. May cost a request per member:
        `lwr drift --verify-links` asks for it."""
        return ()

    def attest(self, desired: DesiredState, actor: str) -> list[str]:
        """Record the file's managed values as what the console shows now; return them."""
        raise UsageError(
            Said.of("{tenant} is read directly; there is nothing to attest", tenant=self.key)
        )

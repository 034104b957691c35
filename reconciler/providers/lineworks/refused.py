"""Refusals of one change, and the member links LINE WORKS refused for good.

A refusal the API will never lift (its name rule) is remembered per channel in the attested
state, so that the next plan makes that member's link a manual step (Provider.execution_of)
and a later success (an admin made it in the console) forgets it again.
"""

from __future__ import annotations

from reconciler.errors import TenantRuleError
from reconciler.i18n import Said
from reconciler.providers.lineworks.refusals import Refusal as ApiRefusal
from reconciler.store.attested import ChannelKnowledge

__all__ = ["REFUSED_LINKS", "LineWorksRefused", "refused_links"]

#: Attested-state field (per channel) of the members the API refused to link for good:
#: {email: reason}. Their links are manual steps from then on (execution_of).
REFUSED_LINKS = "api_refused_links"


class LineWorksRefused(TenantRuleError):
    """LINE WORKS refused one change of an apply; earlier changes of the batch took effect.

    `permanent`: the API will never make this change (its name rule, all-members mode, a
    missing scope); an admin can. `refusal`, when the API answered, is its classified answer
    (reconciler.providers.lineworks.refusals): its `kind`, the API's words and the advice.
    """

    def __init__(
        self,
        change_id: str,
        reason: str,
        permanent: bool = False,
        refusal: ApiRefusal | None = None,
    ) -> None:
        self.change_id, self.reason, self.permanent = change_id, reason, permanent
        self.refusal = refusal
        super().__init__(
            Said.of("change {change} refused: {reason}", change=change_id, reason=reason)
        )


def refused_links(known: ChannelKnowledge) -> dict[str, str]:
    """The members of one channel whose link the API refused for good, and why."""
    fact = known.facts.get(REFUSED_LINKS)
    if fact is None or not isinstance(fact.value, dict):
        return {}
    return {str(k): str(v) for k, v in fact.value.items()}

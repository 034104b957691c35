"""The `lineworks:` tenant: LINE WORKS API 2.0 through a service account, manual steps for the rest.

config.py (credentials), token.py (service-account tokens), client.py (retries, pagination,
polling), limiter.py (pacing per API), lanes.py (the APIs of a batch side by side),
refusals.py (what a refusal means), refused.py (refusals remembered), estimate.py (requests
and time of a plan), notes.py (what a plan says), reads.py (the directory, link-url),
provider.py (the Provider; what it knows but cannot read is kept by reconciler.store.attested).
"""

from __future__ import annotations

from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.providers.lineworks.provider import LineWorksTenant

__all__ = ["LineWorksConfig", "LineWorksTenant"]

"""The `lineworks:` tenant: LINE WORKS API 2.0 through a service account, manual steps for the rest.

config.py (credentials), client.py (auth, retries, pagination, polling), limiter.py (pacing
per API), refusals.py (what a refusal means), estimate.py (requests and time of a plan),
provider.py (the Provider; what it knows but cannot read is kept by reconciler.store.attested).
"""

from __future__ import annotations

from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.providers.lineworks.provider import LineWorksTenant

__all__ = ["LineWorksConfig", "LineWorksTenant"]

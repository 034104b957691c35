"""A LINE WORKS API 2.0 emulator on 127.0.0.1 for the `lineworks:` provider's tests and bench.

tenant.py holds the domain and the documented rules; server.py the HTTP side, limits, faults.
"""

from __future__ import annotations

from emulator.server import (
    Credentials,
    Emulator,
    Fault,
    Limits,
    make_credentials,
    operation_of,
)
from emulator.tenant import EmulatedTenant

__all__ = [
    "Credentials",
    "EmulatedTenant",
    "Emulator",
    "Fault",
    "Limits",
    "make_credentials",
    "operation_of",
]

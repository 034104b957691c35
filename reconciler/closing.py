"""Closing: what owns a connection or a file closes it when its `with` block ends.

One mixin for the providers (a tenant's file or HTTP session) and the state stores (a
database connection), so `with open_provider(uri) as tenant:` and `with store:` mean the
same, and the exit rule is written once.
"""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """`with x:` yields `x` and calls `x.close()` at the end, however the block ends."""

    def close(self) -> None:
        """Release what the object holds; a subclass that holds something overrides it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

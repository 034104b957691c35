"""The YAML loader lwr composes input files with, and the limits it enforces while composing.

libyaml's parser (CSafeLoader) when present, the pure-Python one otherwise; both resolve
tags alike. Owns the size cap (LWR_MAX_FILE_BYTES) and the cap on values it implies, counted
node by node so that composing stops before memory runs away.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from reconciler.errors import UsageError
from reconciler.i18n import Said

SIZE_ENV = "LWR_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 40 * 1024 * 1024  # room for a 1M-member list (~35 MB)
#: Bytes of the size cap per value (node) a file may hold: 40 MiB allows 2.6 million values,
#: while a 1M-member file has 1 million. Each value costs ~400 bytes of memory once parsed,
#: so a file of one-character values ("[a,a,a,...", 20 million in 40 MiB) cannot take 8 GB.
BYTES_PER_VALUE = 16

#: YAML's own tags start so; `str` is what a plain scalar resolves to.
YAML_TAG = "tag:yaml.org,2002:"
STR_TAG = YAML_TAG + "str"


def fast_loader(base: type[Any]) -> type[Any]:
    """`base` (CSafeLoader or SafeLoader) with the same tag resolution, minus per-node overhead.

    The parser calls these three methods for every node; on a 100k-member list they are a
    tenth of the parse. Same table, same answers: the fast branches only skip building lists
    and the path-resolver machinery, which SafeLoader has none of (else the originals run).
    """

    class Loader(base):  # type: ignore[misc]
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._values_left = max_values()

        def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
            table = self.yaml_implicit_resolvers
            if (
                kind is ScalarNode
                and implicit[0]
                and None not in table
                and not self.yaml_path_resolvers
            ):
                for tag, regexp in table.get(value[0] if value else "", ()):
                    if regexp.match(value):
                        return str(tag)
                return STR_TAG  # SafeLoader's DEFAULT_SCALAR_TAG
            return str(super().resolve(kind, value, implicit))

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            # Called for every node the composer builds, tagged or not: the place to count.
            self._values_left -= 1
            if self._values_left < 0:
                raise TooManyValues
            if self.yaml_path_resolvers:
                super().descend_resolver(current_node, current_index)

        def ascend_resolver(self) -> None:
            if self.yaml_path_resolvers:
                super().ascend_resolver()

    return Loader


class TooManyValues(Exception):
    """More values (nodes) than max_values(): composing stops before memory runs away."""


# libyaml's parser is ~10x faster than the pure-Python one; both resolve tags the same way.
LOADER = fast_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def max_values() -> int:
    """How many values (scalars, lists, mappings) a file may hold: one per 16 bytes of the cap."""
    return max_file_bytes() // BYTES_PER_VALUE


def max_file_bytes() -> int:
    """The input size cap: LWR_MAX_FILE_BYTES when set, else 40 MiB."""
    raw = os.environ.get(SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FILE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise UsageError(
            Said.of(
                "{env}={value}: expected a positive number of bytes", env=SIZE_ENV, value=repr(raw)
            )
        )
    return value

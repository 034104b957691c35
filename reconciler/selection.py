"""The last apply's selection: who each selector of a list put on it (docs/departments.md).

After an apply of a file with selectors the state store keeps, per tenant and channel, the
members each org unit and group selected then. The next plan says why a member who is no
longer selected is removed (`left 営業部`), and `lwr drift` counts who joined and who left each
selector since (`Churn`). Only a file that uses selectors reads or writes it.

Kept as one zlib-compressed JSON document per channel: a directory of 100k members is a few
hundred kilobytes written in one row, where one row per member would be 100k inserts per apply.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from reconciler.errors import StateError
from reconciler.i18n import Said
from reconciler.model import MembersSpec, SelectorRule

__all__ = ["Churn", "Selection", "churn", "decode", "encode", "left_by", "selection_of"]

#: (rule, name as written) → the members it selected, per selector of one channel's list.
Selection = Mapping[tuple[SelectorRule, str], frozenset[str]]

_FORMAT = 1


def selection_of(members: MembersSpec) -> Selection:
    """What each selector of a resolved list selects now (before exclude)."""
    return {(rule, name): found for rule, name, found in members.selected}


def encode(selection: Selection) -> bytes:
    """The stored form: compressed JSON, selectors in the file's order, members sorted
    (sorted emails compress to 60 % of the unsorted size)."""
    document = {
        "format": _FORMAT,
        "selected": [
            {"rule": rule, "name": name, "members": sorted(found)}
            for (rule, name), found in selection.items()
        ],
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8"), 1)  # level 6 is barely smaller (3 %)


def decode(blob: bytes) -> Selection:
    """A stored selection; StateError when it is not one this lwr wrote."""
    try:
        document = json.loads(zlib.decompress(bytes(blob)).decode("utf-8"))
        if document.get("format") != _FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        return {
            (cast(SelectorRule, entry["rule"]), str(entry["name"])): frozenset(entry["members"])
            for entry in document["selected"]
        }
    except (zlib.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(
            Said.of(
                "the last apply's selection in the state store is unreadable: {reason}",
                reason=str(exc),
            )
        ) from exc


def left_by(previous: Selection, email: str) -> tuple[SelectorRule, str] | None:
    """The first selector of the last apply that had `email`; None when none did."""
    for key, found in previous.items():
        if email in found:
            return key
    return None


@dataclass(frozen=True)
class Churn:
    """Who one selector selects now and did not at the last apply (joined), and the reverse."""

    rule: SelectorRule
    name: str
    joined: tuple[str, ...]
    left: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """Machine form (schemas/drift.schema.json#/$defs/selection)."""
        return {
            "rule": self.rule,
            "name": self.name,
            "joined": len(self.joined),
            "left": len(self.left),
            "joined_emails": list(self.joined),
            "left_emails": list(self.left),
        }


def churn(previous: Selection, now: Selection) -> tuple[Churn, ...]:
    """Per selector of the list now, in the file's order, who joined and who left since the
    last apply. A selector new in the file or gone from it is a change of the file, not of the
    directory: left out, and so is one nobody joined or left."""
    found = []
    for key, after in now.items():
        before = previous.get(key)
        if before is None:
            continue
        joined, left = after - before, before - after
        if joined or left:
            found.append(Churn(key[0], key[1], tuple(sorted(joined)), tuple(sorted(left))))
    return tuple(found)

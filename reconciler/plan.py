"""The Plan: ordered changes plus the digests that pin it to a file and a tenant state.

Owns the safety gate (`raise_if_unsafe`), the summary, the saved-plan JSON form and its
canonical bytes (what `plan_digest` is the sha256 of). Reading a saved plan back, and deciding
whether it may be applied, is reconciler.saved_plan's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import Any

from reconciler import __version__
from reconciler.actions import Change
from reconciler.change_json import changes_json
from reconciler.errors import InputError, Problem
from reconciler.gate import Gate
from reconciler.i18n import Said
from reconciler.model import ChannelName, DesiredState, SafetySettings, TenantState
from reconciler.planner import Diff, ExecutionOf, diff
from reconciler.settings import SETTINGS
from reconciler.words import utc_now

# Minor = additive and optional; major = a field became required or changed meaning, and
# readers refuse other majors. 2.0: the desired document became required; 2.1 added `gate`;
# 2.2 each change's `because` and the `empties_list` threshold (docs/plan-format.md).
FORMAT_VERSION = "2.2"


@dataclass(frozen=True)
class Plan:
    """A plan as shown, saved and applied."""

    tenant: str  # the tenant's domain
    tenant_uri: str  # where it was read from (provider key)
    state_digest: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    safety: SafetySettings = field(default_factory=SafetySettings)
    source: str = ""
    created_at: str = ""
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION
    # The validated desired-state document the plan was made from (DesiredState.document):
    # what apply re-plans from. None for a desired state built in memory by a library caller.
    desired_document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    # The desired_digest as read from a saved plan, or of a desired state without a
    # document; None: the digest of desired_document, taken when first asked
    # (`desired_digest`). A text plan never asks: at 100k members it is 25 ms of JSON.
    given_desired_digest: str | None = field(default=None, compare=False, repr=False)

    @cached_property
    def desired_digest(self) -> str:
        """sha256 of the desired document's canonical JSON (`document_digest`)."""
        if self.given_desired_digest is not None or self.desired_document is None:
            return self.given_desired_digest or ""
        return document_digest(self.desired_document)

    @property
    def destructive(self) -> tuple[Change, ...]:
        """The changes that need --allow-destructive."""
        return tuple(c for c in self.changes if c.destructive)

    @cached_property  # frozen: the content cannot change; to_json and apply both need it
    def digest(self) -> str:
        """Identity of this plan's whole content: sha256 of its canonical saved form.

        Every field of every change, the desired document, the safety block, the digests and
        the metadata; only `plan_digest` itself is left out. The journal records it as applied.
        """
        # Streamed, 1,000 changes at a time: at 100k changes the canonical text of the whole
        # plan is tens of MB, and apply needs only its hash. The bytes hashed are exactly
        # canonical_bytes(self._body(True)): "changes" is the first key in sorted order.
        rest = canonical_bytes(self._body(False))  # the same body with "changes": []
        if not rest.startswith(_CHANGES_OPEN + b"]"):  # cannot happen; never hash wrong bytes
            return hashlib.sha256(canonical_bytes(self._body(True))).hexdigest()
        h = hashlib.sha256(_CHANGES_OPEN)
        texts = changes_json(self.changes, allow_nan=False)
        for start in range(0, len(self.changes), _DIGEST_CHUNK):
            if start:
                h.update(b",")
            # the items of canonical_bytes(chunk's documents), without the list's brackets
            h.update(_yaml_safe(",".join(islice(texts, _DIGEST_CHUNK))))
        h.update(rest[len(_CHANGES_OPEN) :])
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Counts by kind: the line a reviewer reads first."""
        counted = self._summary  # counted once: the digest, the saved form and the view ask
        return {**counted, "by_action": dict(counted["by_action"])}

    @cached_property
    def _summary(self) -> dict[str, Any]:
        buckets = Counter(c.spec.bucket for c in self.changes)
        return {
            "total": len(self.changes),
            "add": buckets["add"],
            "change": buckets["change"],
            "remove": buckets["remove"],
            "destructive": sum(1 for c in self.changes if c.destructive),
            "manual": sum(1 for c in self.changes if c.execution == "manual"),
            # counted by member (no Enum `value` property per change), then named
            "by_action": {
                action.value: n
                for action, n in sorted(Counter(c.action for c in self.changes).items())
            },
        }

    @cached_property
    def gate(self) -> Gate:
        """The safety gate's verdict on this plan (reconciler.gate): what apply refuses."""
        return Gate.of(self.changes, self.safety, self.source)

    def raise_if_unsafe(self, *, allow_destructive: bool) -> None:
        """Refuse (exit 3) what the safety rules forbid; say the numbers and the way out.

        A channel in safety.protect_channels refuses every destructive change (turning it
        off, removals over the thresholds) even with --allow-destructive.
        """
        refusal = self.gate.refusal(allow_destructive=allow_destructive)
        if refusal is not None:
            raise refusal

    def to_json(self, *, changes: bool = True) -> dict[str, Any]:
        """The saved-plan document (schemas/plan.schema.json).

        `changes=False` leaves the change list empty and `plan_digest` and `desired_digest`
        '' (the summary still describes the whole plan): for readers that look at none of
        them (policy rules that do not name them), at 100k changes two seconds saved.
        """
        body = self._body(changes, digest=changes)
        document = {key: body[key] for key in _HEAD}
        document["plan_digest"] = self.digest if changes else ""
        document.update((key, body[key]) for key in _TAIL)
        return document

    @cached_property
    def _change_documents(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.changes]

    def _body(self, changes: bool, *, digest: bool = True) -> dict[str, Any]:
        """Every saved field but `plan_digest`, in saved order (the changes and the
        desired_digest only if asked)."""
        return {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "tenant": self.tenant,
            "tenant_uri": self.tenant_uri,
            "source": self.source,
            "created_at": self.created_at,
            "desired_digest": self.desired_digest if digest else "",
            "state_digest": self.state_digest,
            "safety": {
                "max_member_removals": self.safety.max_member_removals,
                "max_member_removal_percent": self.safety.max_member_removal_percent,
                "protect_channels": sorted(c.value for c in self.safety.protect_channels),
            },
            "changes": self._change_documents if changes else [],
            "warnings": list(self.warnings),
            "summary": self.summary(),
            "gate": self.gate.to_json(),
            # Last: a reviewer reading the file meets the changes first.
            "desired_document": self.desired_document,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "<plan>") -> Plan:
        """A plan from its saved document; refuse another major format version.

        Types are not checked here: reconciler.saved_plan validates a file against the
        schema before it gets here.
        """
        version = str(data.get("format_version", ""))
        if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
            raise InputError([unsupported_version(source, version)])
        safety = data.get("safety", {})
        return cls(
            tenant=data["tenant"],
            tenant_uri=data["tenant_uri"],
            given_desired_digest=data["desired_digest"],
            state_digest=data["state_digest"],
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            warnings=tuple(data.get("warnings", ())),
            safety=SafetySettings(
                max_member_removals=safety.get("max_member_removals", 50),
                max_member_removal_percent=safety.get("max_member_removal_percent", 20.0),
                protect_channels=frozenset(
                    ChannelName(c) for c in safety.get("protect_channels", ())
                ),
            ),
            source=data.get("source", ""),
            created_at=data.get("created_at", ""),
            tool_version=data.get("tool_version", ""),
            format_version=version,
            desired_document=data.get("desired_document"),
        )


_HEAD = (
    "format_version",
    "tool_version",
    "tenant",
    "tenant_uri",
    "source",
    "created_at",
    "desired_digest",
    "state_digest",
)
_TAIL = ("safety", "changes", "warnings", "summary", "gate", "desired_document")


def unsupported_version(source: str, version: str) -> Problem:
    """The problem of a plan of another major format version, with the way out."""
    major = FORMAT_VERSION.split(".")[0]
    number = re.fullmatch(r"([0-9]{1,4})(\.[0-9]{1,4})?", version)
    if number and int(number.group(1)) < int(major):  # no desired document to re-plan from
        return Problem(
            source,
            0,
            0,
            "format_version",
            Said.of(
                "plan format_version {version} is older than this lwr reads ({major}.x): it "
                "does not carry the desired document that apply checks a plan against",
                version=repr(version),
                major=major,
            ),
            Said.of("make the plan again with this lwr: `lwr plan FILE --out PLAN.json`"),
        )
    return Problem(
        source,
        0,
        0,
        "format_version",
        Said.of("unsupported plan format_version {version}", version=repr(version)),
        Said.of(
            "this lwr reads {major}.x plans; apply it with the lwr that made it, or make the "
            "plan again with this one",
            major=major,
        ),
    )


def document_digest(document: Mapping[str, Any]) -> str:
    """A plan's desired_digest: sha256 of the desired document's canonical JSON.

    Of the document, not of the file's bytes: apply re-plans from the document a saved plan
    carries, so this is what it can recompute (comments and layout of the file do not count).
    """
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def canonical_bytes(value: object) -> bytes:
    """The one byte form digests are taken of: sorted keys, no spaces, UTF-8 unescaped.

    NEL, LS and PS are escaped: the desired document is parsed again by the YAML loader,
    which would read them raw as line breaks (and fold them); JSON reads both spellings alike.
    """
    text = json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return _yaml_safe(text)


def _yaml_safe(text: str) -> bytes:
    for raw, escaped in _YAML_BREAKS:
        if raw in text:
            text = text.replace(raw, escaped)
    return text.encode()


_CHANGES_OPEN = b'{"changes":['
_DIGEST_CHUNK = 1000

_YAML_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def make_plan(
    desired: DesiredState,
    current: TenantState,
    tenant_uri: str,
    execution: ExecutionOf | None = None,
) -> Plan:
    """Diff `desired` against `current` and pin the result to both."""
    result: Diff = diff(desired, current, execution) if execution else diff(desired, current)
    return Plan(
        tenant=current.domain,
        tenant_uri=tenant_uri,
        given_desired_digest=desired.digest if desired.document is None else None,
        state_digest=state_digest(current),
        changes=result.changes,
        warnings=result.warnings,
        safety=desired.safety,
        source=desired.source,
        created_at=utc_now("seconds"),
        desired_document=desired.document,
    )


def state_digest(state: TenantState) -> str:
    """Digest of what a plan depends on: directory and every setting and list.

    Room counts are left out on purpose: a customer's new message must not make a
    reviewed plan stale, while a new hire or a changed list must.
    """
    h = hashlib.sha256()
    h.update(f"domain={state.domain}\n".encode())
    h.update("\n".join(sorted(state.directory)).encode())
    for name in sorted(state.channels):
        ch = state.channels[name]
        h.update(
            _canon(
                {"channel": name.value, **{s.digest_key: getattr(ch, s.attr) for s in SETTINGS}}
            ).encode()
        )
        h.update(_members_digest_text(ch.members, state.directory).encode())
    return h.hexdigest()


def _members_digest_text(members: frozenset[str], directory: frozenset[str]) -> str:
    """A list as its smaller side: the members, or the directory members not on it.

    Either determines the list once the directory is hashed, and sorting the smaller side
    keeps a 100k-member digest to one big sort (the directory) instead of three.
    """
    if len(members) > len(directory) // 2 and members <= directory:
        return "-" + "\n".join(sorted(directory - members))
    return "+" + "\n".join(sorted(members))


def _canon(value: object) -> str:
    # Most values are booleans (one per member change): spelled as json.dumps would, directly.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

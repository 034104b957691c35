"""The audit log's rows and its hashing rule, the same in every backend.

An AuditRecord is what the executor hands in; the store adds order, time and the chain
(AuditEntry). Each entry's hash covers the previous entry's hash and the canonical JSON of
its own fields, plain sha256 or HMAC-SHA256 with LWR_AUDIT_KEY (reconciler.audit checks it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from json.encoder import encode_basestring as _str  # what dumps(ensure_ascii=False) uses
from typing import Any, Literal

from reconciler.actions import Change
from reconciler.change_json import json_constant

#: applied: lwr's own call took effect; attested: a manual step an admin confirmed doing in
#: the console; recovered: found in effect after a killed run; failed: refused or errored.
AuditResult = Literal["applied", "attested", "recovered", "failed"]

#: prev_hash of the first audit row of a store.
GENESIS_HASH = "0" * 64
#: How an entry's `hash` was made: plain sha256 (anyone can recompute it), or HMAC-SHA256 with
#: LWR_AUDIT_KEY (only a key holder can). Stored per entry (`hash_alg`), as keys come later.
HashAlg = Literal["sha256", "hmac-sha256"]


@dataclass(frozen=True)
class AuditRecord:
    """An audit row as the executor hands it in; the store adds seq, time and chain hashes."""

    tenant_key: str
    domain: str
    run_id: str
    actor: str
    change_id: str
    action: str
    channel: str
    target: str | None
    before: Any
    after: Any
    result: AuditResult
    error: str | None = None

    @classmethod
    def of(
        cls,
        change: Change,
        *,
        tenant_key: str,
        domain: str,
        run_id: str,
        actor: str,
        result: AuditResult,
        error: str | None = None,
    ) -> AuditRecord:
        """The audit row for one change."""
        return cls(
            tenant_key=tenant_key,
            domain=domain,
            run_id=run_id,
            actor=actor,
            change_id=change.id,
            # `_value_`: Enum's `value` is a Python-level property, two reads per change
            action=change.action._value_,
            channel=change.channel._value_,
            target=change.target,
            before=change.before,
            after=change.after,
            result=result,
            error=error,
        )


@dataclass(frozen=True, kw_only=True)
class AuditEntry(AuditRecord):
    """A stored audit row: the record plus what the store adds (order, time, chain)."""

    seq: int
    at: str
    prev_hash: str
    hash: str
    hash_alg: HashAlg = "sha256"

    def to_json(self) -> dict[str, Any]:
        """Machine form for `lwr audit --format json`: order and time first, as in the text."""
        fields = ["seq", "at", *(f for f in self.__dataclass_fields__ if f not in ("seq", "at"))]
        return {name: getattr(self, name) for name in fields}


@dataclass(frozen=True)
class AuditHead:
    """The newest entry of a log (seq 0 and GENESIS_HASH when empty): what `lwr audit head`
    prints for a pipeline to keep outside the store, and `--verify --head` checks against."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq} {self.hash}"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of recomputing the audit chain.

    Not ok with `first_bad_seq` set: the log was changed there. Not ok without it: the log
    could not be vouched for (keyed entries and no key, or unkeyed entries under a key).
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    #: Entries whose HMAC was checked with the key.
    keyed: int = 0
    #: The seq of the kept head that was found unchanged, when one was given.
    anchored: int | None = None


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for hashing: sorted keys, no spaces, UTF-8 kept as is."""
    if (constant := json_constant(value)) is not None:  # most before/after values
        return constant
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, seq: int, at: str, record: AuditRecord) -> str:
    """sha256(prev_hash + canonical JSON of the row's fields); identical in every backend.

    The fields are seq, at and every AuditRecord field, before/after as JSON values (not as
    stored text), so that a backend may store JSON its own way.
    """
    return row_hash(
        prev_hash, seq, at, record, canonical_json(record.before), canonical_json(record.after)
    )


def row_hash(
    prev_hash: str,
    seq: int,
    at: str,
    record: AuditRecord,
    before_json: str,
    after_json: str,
    key: hmac.HMAC | None = None,
) -> str:
    """`chain_hash` with before/after already in canonical JSON (as the store writes them).

    With `key` (an HMAC-SHA256 object holding the audit key, nothing fed yet: see
    reconciler.audit), the same text is MACed instead of hashed.
    """
    text = (prev_hash + row_text(seq, at, record, before_json, after_json)).encode("utf-8")
    if key is None:
        return hashlib.sha256(text).hexdigest()
    mac = key.copy()  # the key's padding is hashed once, not once per row
    mac.update(text)
    return mac.hexdigest()


def row_text(seq: int, at: str, record: AuditRecord, before_json: str, after_json: str) -> str:
    """Canonical JSON of the row's fields, spelled out by hand: keys in sorted order, strings
    encoded exactly as json.dumps(ensure_ascii=False) does; three times faster, which
    100k-row applies need. A test pins it to canonical_json.
    """
    return "".join(
        (
            '{"action":',
            _str(record.action),
            ',"actor":',
            _str(record.actor),
            ',"after":',
            after_json,
            ',"at":',
            _str(at),
            ',"before":',
            before_json,
            ',"change_id":',
            _str(record.change_id),
            ',"channel":',
            _str(record.channel),
            ',"domain":',
            _str(record.domain),
            ',"error":',
            _opt(record.error),
            ',"result":',
            _str(record.result),
            ',"run_id":',
            _str(record.run_id),
            ',"seq":',
            str(int(seq)),
            ',"target":',
            _opt(record.target),
            ',"tenant_key":',
            _str(record.tenant_key),
            "}",
        )
    )


def _opt(value: str | None) -> str:
    return "null" if value is None else _str(value)

"""What makes the audit log trustworthy beyond its own database: a key, and a head kept elsewhere.

- LWR_AUDIT_KEY (or LWR_AUDIT_KEY_FILE naming a file only its owner can read): new entries
  are chained with HMAC-SHA256 over the same canonical text as the plain sha256 chain, so
  rewriting the log consistently takes the key, not just write access to the database.
- A head kept outside the store (`lwr audit head`, checked by `lwr audit --verify --head
  SEQ:HASH`): no entry up to it can be lost or changed unnoticed, keyed or not.
- ChainCheck: the verification rules, fed the stored rows in order by a backend (store/sql.py).

Keyed and unkeyed entries share one chain (each entry's `hash_alg` says which it is), because
a log starts unkeyed and a key comes later. The rules that keep that from becoming a way
around the key: without the key, keyed entries cannot be checked and verification fails
saying so; with the key, every entry must be keyed or be covered by a kept head (an unkeyed
entry is exactly what someone without the key can forge).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from reconciler.errors import UsageError
from reconciler.i18n import Said
from reconciler.store.base import (
    GENESIS_HASH,
    AuditEntry,
    AuditHead,
    AuditRecord,
    HashAlg,
    VerifyResult,
    row_hash,
)

KEY_ENV = "LWR_AUDIT_KEY"
KEY_FILE_ENV = "LWR_AUDIT_KEY_FILE"
#: Shorter keys are refused: an HMAC is only as strong as a key nobody can guess.
MIN_KEY_BYTES = 16

#: The audit table's columns in the order ChainCheck and audit_entry read them.
AUDIT_COLUMNS = (
    "seq, at, tenant_key, domain, run_id, actor, change_id, action, channel, "
    "target, before, after, result, error, prev_hash, hash, hash_alg"
)

_ANCHOR = re.compile(r"(\d{1,18})[: ]([0-9a-f]{64})")


@dataclass(frozen=True)
class AuditKey:
    """The audit key (never in repr or a message) and where it came from, for messages."""

    secret: bytes = field(repr=False)
    source: str

    def mac(self) -> hmac.HMAC:
        """A fresh HMAC-SHA256 keyed with it, nothing fed yet (row_hash copies it per row)."""
        return hmac.new(self.secret, digestmod=hashlib.sha256)


def load_audit_key(environ: Mapping[str, str] = os.environ) -> AuditKey | None:
    """The key from LWR_AUDIT_KEY or LWR_AUDIT_KEY_FILE (a 0600 file), or None when unset
    (or empty).

    UsageError for both set, an empty or short key, or a file others may read; the message
    names the variable or the file, never the key.
    """
    # Empty counts as unset: a CI secret that does not exist arrives as an empty variable.
    value, path = environ.get(KEY_ENV) or None, environ.get(KEY_FILE_ENV) or None
    if value and path:
        raise UsageError(
            Said.of(
                "both {key} and {key_file} are set: set only one",
                key=KEY_ENV,
                key_file=KEY_FILE_ENV,
            )
        )
    if path:
        return AuditKey(_read_key_file(Path(path)), path)
    if value is None:
        return None
    return AuditKey(_checked(value.encode("utf-8"), KEY_ENV), KEY_ENV)


def _read_key_file(path: Path) -> bytes:
    from reconciler.credentials import read_private_file

    secret = read_private_file(path, "audit key file")
    # A trailing newline is what editors and `echo` add, never part of the key.
    return _checked(secret.rstrip(b"\r\n"), Said.of("the audit key file {path}", path=str(path)))


def _checked(secret: bytes, source: str) -> bytes:
    if len(secret) < MIN_KEY_BYTES:
        raise UsageError(
            Said.of(
                "{source} is too short for an audit key (at least {n} bytes): make one with "
                "`openssl rand -hex 32`",
                source=source,
                n=MIN_KEY_BYTES,
            )
        )
    return secret


def parse_anchor(text: str) -> AuditHead:
    """`SEQ:HASH` (or `SEQ HASH`, as `lwr audit head` prints it) as an AuditHead."""
    match = _ANCHOR.fullmatch(text.strip())
    if match is None:
        raise UsageError(
            Said.of(
                "--head {given}: expected SEQ:HASH, the two fields `lwr audit head` printed "
                "(a number, then 64 lower-case hex digits)",
                given=repr(text),
            )
        )
    return AuditHead(int(match[1]), match[2])


def stored_record(row: Sequence[Any]) -> AuditRecord:
    """The AuditRecord a row of AUDIT_COLUMNS was hashed from; before/after are left None,
    as they are hashed as the canonical text stored (row[10], row[11]), not re-encoded."""
    return AuditRecord(**_record_fields(row), before=None, after=None)


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    """An AuditEntry from a row of AUDIT_COLUMNS."""
    import json

    return AuditEntry(
        **_record_fields(row),
        before=json.loads(row[10]),
        after=json.loads(row[11]),
        seq=row[0],
        at=row[1],
        prev_hash=row[14],
        hash=row[15],
        hash_alg=cast(HashAlg, row[16]),
    )


def _record_fields(row: Sequence[Any]) -> dict[str, Any]:
    """The AuditRecord fields of a row of AUDIT_COLUMNS but before/after (a plain dict: as
    fast as spelling the fields out, which `lwr audit` does for every entry)."""
    return {
        "tenant_key": row[2],
        "domain": row[3],
        "run_id": row[4],
        "actor": row[5],
        "change_id": row[6],
        "action": row[7],
        "channel": row[8],
        "target": row[9],
        "result": row[12],
        "error": row[13],
    }


@dataclass
class ChainCheck:
    """Verification of one log, fed its rows (AUDIT_COLUMNS) oldest first.

    `feed` returns a failed VerifyResult at the first row that breaks the chain; `finish`
    compares the end with the store's own head and the kept one, then judges the keys.
    """

    key: AuditKey | None
    anchor: AuditHead | None
    checked: int = 0
    prev: str = GENESIS_HASH
    keyed: int = 0
    #: Keyed entries seen without the key: their content could not be checked.
    unchecked: int = 0
    #: Seqs of unkeyed entries past the kept head, while a key is set.
    unkeyed: list[int] = field(default_factory=list)
    anchor_hash: str | None = None

    def __post_init__(self) -> None:
        self._mac = self.key.mac() if self.key else None
        if self.anchor is not None and self.anchor.seq == 0:
            self.anchor_hash = GENESIS_HASH

    def feed(self, row: Sequence[Any]) -> VerifyResult | None:
        """Check one row; a failed result when it breaks the chain, else None."""
        expected = self.checked + 1
        problem = self._problem(row, expected)
        if problem:
            return VerifyResult(False, self.checked, expected, problem, keyed=self.keyed)
        self.checked, self.prev = expected, row[15]
        if self.anchor is not None and expected == self.anchor.seq:
            self.anchor_hash = row[15]
        return None

    def _problem(self, row: Sequence[Any], expected: int) -> str:
        """Why this stored row breaks the chain, or '' when it fits."""
        if row[0] != expected:
            return f"entry {expected} is missing (found entry {row[0]} in its place)"
        if row[14] != self.prev:
            return f"entry {expected} does not follow entry {expected - 1} (prev_hash differs)"
        if row[16] == "hmac-sha256":
            if self._mac is None:
                self.unchecked += 1  # the link is checked; the content needs the key
                return ""
            return self._mismatch(row, expected, self._mac, "MAC")
        if row[16] != "sha256":
            return f"entry {expected} has an unknown hash_alg {row[16]!r}"
        if self.key is not None and (self.anchor is None or expected > self.anchor.seq):
            self.unkeyed.append(expected)
        return self._mismatch(row, expected, None, "hash")

    def _mismatch(self, row: Sequence[Any], expected: int, mac: hmac.HMAC | None, what: str) -> str:
        # before/after are hashed as the canonical text we stored: any edit to them, even
        # one that keeps the JSON value, breaks the hash. Other columns must have their
        # stored types.
        try:
            digest = row_hash(self.prev, row[0], row[1], stored_record(row), row[10], row[11], mac)
        except (TypeError, ValueError):
            return f"entry {expected} holds a value of the wrong type"
        if digest != row[15]:
            return f"entry {expected} was modified (its content does not match its {what})"
        self.keyed += mac is not None
        return ""

    def finish(self, head: Sequence[Any] | None) -> VerifyResult:
        """The verdict once every row was fed; `head` is the store's audit_head row."""
        head_seq, head_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
        if (head_seq, head_hash) != (self.checked, self.prev):
            return self._failed(
                self.checked + 1,
                f"the log ends at entry {self.checked} but its head records "
                f"entry {head_seq}: the newest entries were deleted or "
                "replaced",
            )
        if self.anchor is not None:
            lost = self._lost()
            if lost:
                return self._failed(min(self.checked, self.anchor.seq) + 1, lost)
        if self.unchecked:
            return self._failed(
                None,
                f"{_entries(self.unchecked)} keyed: set {KEY_ENV} (or "
                f"{KEY_FILE_ENV}) to verify them",
            )
        if self.unkeyed:
            first, last = self.unkeyed[0], self.unkeyed[-1]
            return self._failed(
                None,
                (
                    f"{_entries(len(self.unkeyed))} not keyed (seq {first} to {last}) although "
                    f"{KEY_ENV} is set: written before the key was set or by a runner without it, "
                    "or rewritten by someone without the key. Entries from before the key are "
                    "vouched for by the head kept then: `lwr audit --verify --head SEQ:HASH`"
                ),
            )
        return VerifyResult(
            True, self.checked, keyed=self.keyed, anchored=self.anchor.seq if self.anchor else None
        )

    def _lost(self) -> str:
        """What the log lost or changed up to the kept head, or ''."""
        assert self.anchor is not None
        if self.checked < self.anchor.seq:
            return (
                f"the log ends at seq {self.checked} but the anchor says {self.anchor.seq} "
                "existed: the newest entries were deleted"
            )
        if self.anchor_hash != self.anchor.hash:
            return (
                f"entry {self.anchor.seq}'s hash differs from the anchor: entries up to "
                f"{self.anchor.seq} were rewritten (or the anchor is of another log)"
            )
        return ""

    def _failed(self, seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, self.checked, seq, reason, keyed=self.keyed)


def _entries(n: int) -> str:
    """`1 entry is`, `3 entries are`."""
    return "1 entry is" if n == 1 else f"{n} entries are"

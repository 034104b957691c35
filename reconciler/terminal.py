"""Text that is safe to put on a terminal: control characters shown, never executed.

A greeting, a member email read from a tenant, a path or a URI can carry ESC sequences
(colour, cursor moves, title changes), C1 controls (U+009B is a one-character CSI) or
bidirectional controls that reorder what a reviewer reads (U+202E turns "evil" into "live").
Human output shows every such character as a visible escape instead of obeying it.

Escaped, besides newline and tab (which human output needs):
- C0 controls, DEL and C1 controls (Unicode category Cc) as ``\\xNN``;
- every invisible format character (category Cf): bidi embeddings, overrides and isolates
  (U+202A-U+202E, U+2066-U+2069), the marks U+200E, U+200F and U+061C, zero-width space and
  joiners, word joiner, BOM, soft hyphen, tag characters;
- line and paragraph separators (U+2028, U+2029) and lone surrogates,
as ``\\uNNNN`` or ``\\UNNNNNNNN``. The zero-width joiner inside emoji sequences is escaped
too: an honest ``\\u200d`` is better than a character nobody can see.
A backslash is left as it is, so ``\\x1b`` typed as four characters reads the same as an
escaped ESC; the desired-state schema rejects the real control characters in greetings.
"""

from __future__ import annotations

import re

# Category Cf as of Unicode 15.1 (tests compare this with unicodedata), Cc but \t \n,
# Zl, Zp and surrogates. Written out: scanning all code points at import costs ~0.3 s.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every control, bidi and invisible format character but newline and tab
    written as a visible escape; idempotent, and `text` itself when there is none."""
    # isprintable() is false for every character escaped here (and for newline, tab, NBSP):
    # the common one-line case costs one C-speed scan.
    if text.isprintable() or _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_safe(text: str) -> str:
    """JSON text with every character `printable` would escape written as a JSON escape.

    The parsed values are unchanged (machine output stays exact), but a terminal showing the
    document is as safe as with human output: json.dumps escapes C0 controls only, leaving
    C1, bidi and zero-width characters raw. Such characters occur only inside strings.
    """
    if text.isprintable() or _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_json_escape, text)

"""Text that is safe to put on a terminal: control characters shown, never executed.

A greeting or an external user's message can carry ESC sequences (colour, cursor moves,
title changes); human output shows them as visible escapes instead of obeying them.
"""

from __future__ import annotations

# C0 controls but newline and tab, DEL, and C1 controls: each becomes \xNN.
_VISIBLE = {
    code: f"\\x{code:02x}"
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    if chr(code) not in "\n\t"
}


def printable(text: str) -> str:
    """`text` with every control character but newline and tab written as an escape."""
    return text.translate(_VISIBLE)

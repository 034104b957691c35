"""ANSI colour for human output, without a terminal library: render/ never imports click.

Byte for byte what click.style writes, so coloured output did not change when this replaced
it: the colour, then bold (or "normal intensity" for bold=False), the text, then a reset.
"""

from __future__ import annotations

_COLORS = {
    "black": 30,
    "red": 31,
    "green": 32,
    "yellow": 33,
    "blue": 34,
    "magenta": 35,
    "cyan": 36,
    "white": 37,
}


def style(text: str, fg: str | None = None, bold: bool | None = None) -> str:
    """`text` in colour `fg` (a basic ANSI colour name) and, when `bold`, bold."""
    head = f"\x1b[{_COLORS[fg]}m" if fg is not None else ""
    if bold is not None:
        head += "\x1b[1m" if bold else "\x1b[22m"
    return f"{head}{text}\x1b[0m"

"""Whether a path names a saved plan or a desired file, told by its content first.

`lwr apply X` takes either; the name alone would let a renamed file be read as the wrong
kind, so the content decides and the name only breaks a tie.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler import files
from reconciler.desired import STDIN, is_saved_plan_document
from reconciler.errors import LwrError

__all__ = ["is_saved_plan"]


def is_saved_plan(path: str | Path) -> bool:
    """Whether `path` holds a saved plan rather than a desired file, told by its content:
    a JSON object with the plan's `format_version` is a plan, one with the desired file's
    `version` is not, whatever the name. Anything else (unreadable, not JSON, neither key)
    goes by the name, `.json` for a plan, so its reader says what is wrong. `-` (stdin) is
    a desired file."""
    if str(path) == STDIN:
        return False
    named = str(path).lower().endswith(".json")
    try:
        with files.open_input(path) as f:
            head = f.read(_SNIFF).lstrip(b"\xef\xbb\xbf \t\r\n")
            if not head.startswith(b"{"):  # a saved plan is a JSON object
                return named
            data = json.loads(head + f.read())
    except (LwrError, OSError, ValueError, RecursionError):
        return named
    if is_saved_plan_document(data):
        return True
    return named and not (isinstance(data, dict) and "version" in data)


_SNIFF = 4096

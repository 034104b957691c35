"""Where the shipped JSON Schemas and default policies live, installed or in a checkout.

Wheels carry them under `reconciler/_data/`; an editable install reads the repo's own folders.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The shipped `schemas` or `policies` folder."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"lineworks-reconciler is missing its {name}/ folder; reinstall it")


@cache
def load_schema(filename: str) -> dict[str, Any]:
    """A shipped JSON Schema, parsed once per process (read-only: do not mutate)."""
    with (data_dir("schemas") / filename).open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema

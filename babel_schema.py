"""Babel's extractor for lwr's JSON Schemas (`make messages`, babel.cfg): the words lwr shows
from a schema are message ids too. Those are each `x-hint` (a string, or one per keyword),
each `title`, and the `description` of a key a `required` list names (the hint for a
missing key quotes it). reconciler/schema_words.py says them in the reader's language.

Not part of the package: it runs where Babel runs, from the repository (PYTHONPATH=.).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

Found = tuple[int, str, str, list[str]]


def extract_schema(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: object
) -> Iterator[Found]:
    """(line, funcname, message, comments) for each message of one schema file."""
    text = fileobj.read().decode("utf-8")
    for message in dict.fromkeys(messages(json.loads(text))):
        line = next((n for n, row in enumerate(text.splitlines(), 1) if message in row), 0)
        yield line, "", message, []


def messages(node: Any) -> Iterator[str]:
    """Every message id of a schema node and the nodes under it, in document order."""
    if isinstance(node, list):
        for item in node:
            yield from messages(item)
        return
    if not isinstance(node, dict):
        return
    hint = node.get("x-hint")
    if isinstance(hint, str):
        yield hint
    elif isinstance(hint, dict):
        yield from (h for h in hint.values() if isinstance(h, str))
    if isinstance(node.get("title"), str):
        yield node["title"]
    properties = node.get("properties")
    if isinstance(properties, dict):
        for key in node.get("required") or ():
            about = properties.get(key, {}).get("description") if key in properties else None
            if isinstance(about, str):
                yield about
    for key, value in node.items():
        if key != "x-hint":
            yield from messages(value)

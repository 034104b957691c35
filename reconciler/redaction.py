"""What of a URI may be shown: passwords and secret query values masked, everywhere.

`redact` makes any tenant or state URI fit to print; `scrub` masks a URI and each of its
secrets in text that may quote it (a driver's error message, say). Never raises: it runs
on input that failed to parse.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "POSTGRES_SCHEMES", "redact", "scrub", "secrets_in"]

#: A query key naming one of these is a secret, whatever the URI.
_SECRET_WORDS = ("secret", "password", "passwd", "pwd", "token")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MASK = "***"


def redact(uri: str) -> str:
    """`uri` fit to print: a password (even with `/`, `#`, `@` or `?` in it) and every secret
    query value (client_secret, password, …token…) replaced by ***. Never raises."""
    head, sep, query = uri.partition("?")
    if sep:  # the query first: an @ in a ?password= must not look like the end of a user
        parts = []
        for part in query.split("&"):
            key, eq, _value = part.partition("=")
            parts.append(f"{key}={MASK}" if eq and _is_secret(key) else part)
        uri = head + sep + "&".join(parts)
    return _redact_userinfo(uri)


def _redact_userinfo(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    # The last @ ends the user part: a raw @, / or # in a password must not end it early.
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if uri.startswith(POSTGRES_SCHEMES) and colon:
        return f"{scheme}://{user}:{MASK}@{host}"
    if uri.startswith(POSTGRES_SCHEMES):
        return uri if "/" not in userinfo and "?" not in userinfo else f"{scheme}://{MASK}@{host}"
    return f"{scheme}://{MASK}@{host}"


def _is_secret(key: str) -> bool:
    name = unquote(key).lower()
    return any(word in name for word in _SECRET_WORDS)


def secrets_in(uri: str) -> list[str]:
    """The secret values of a URI, as written and decoded (longest first), for `scrub`."""
    found: set[str] = set()
    _scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        userinfo = rest.rpartition("@")[0]
        if ":" in userinfo:
            found.add(userinfo.partition(":")[2])
        elif not uri.startswith(POSTGRES_SCHEMES):
            found.add(userinfo)
    query = uri.partition("?")[2]
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if eq and _is_secret(key):
            found.add(value)
    found |= {unquote(s) for s in found}
    # A parser that splits a password at a raw @ / ? # quotes a piece of it.
    found |= {piece for s in found for piece in re.split(r"[@/?#:]", s) if len(piece) >= 4}
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, uri: str) -> str:
    """`text` (an error from a library, say) with `uri` and each of its secrets masked."""
    if uri:
        text = text.replace(uri, redact(uri))
    for secret in secrets_in(uri):
        text = text.replace(secret, MASK)
    return re.sub(r"(?i)(password\s*=\s*)'?[^\s'&]+'?", rf"\g<1>{MASK}", text)

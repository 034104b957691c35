"""What LINE WORKS API 2.0 can read near the lists: link-url, against attested lists.

The directory (`GET /users`) and the org chart are read in orgunits.py. The only read
near the member lists is `GET /users/{userId}/link-url`: it answers 200 (the member's
invitation link) for a member with an external permission on *some* channel, and 403/404
otherwise (user-link-url-get, ja and en, verified; which of 403 or 404 a member without
permission gets is not said: ASSUMPTION, both count). It cannot tell the channels apart, so it
can only contradict: a member lwr's attested state holds on an enabled list whom the API says
has no permission at all. One request per attested member, on its own budget: 2,000 members
take 8 min 20 s at 240/min, 100,000 about 7 h; so `lwr drift` asks only with --verify-links.
"""

from __future__ import annotations

from urllib.parse import quote

from reconciler.i18n import Msg, Said, anded
from reconciler.model import TenantState
from reconciler.providers.base import CONSOLE_PAGE
from reconciler.providers.lineworks.client import ApiError, LineWorksClient

__all__ = ["OPERATION", "contradicted"]

OPERATION = "GET /users/{userId}/link-url"
_NO_PERMISSION = frozenset({403, 404})


def contradicted(client: LineWorksClient, state: TenantState) -> tuple[str, ...]:
    """One line per member attested on an enabled list of `state` whom link-url says has no
    external permission; () when a channel grants all members (everyone has one)."""
    if any(have.enabled and have.all_members for have in state.channels.values()):
        return ()
    lists: dict[str, list[str]] = {}
    for channel, have in state.channels.items():
        if have.enabled:
            for email in have.members:
                lists.setdefault(email, []).append(channel.value)
    found = []
    for email in sorted(lists):
        try:
            client.call("GET", f"/users/{quote(email, safe='')}/link-url", OPERATION)
        except ApiError as exc:
            if exc.status not in _NO_PERMISSION:
                raise
            found.append(
                Said.of(
                    "lineworks: {email} is on lwr's attested {lists} list, but LINE WORKS "
                    "says they have no external permission ({operation} answered {status} "
                    "{code}): check {page}, then record it with `lwr attest FILE` or apply "
                    "the file again",
                    email=email,
                    lists=anded(lists[email]),
                    operation=OPERATION,
                    status=exc.status,
                    code=exc.code,
                    page=Msg.of(CONSOLE_PAGE),
                )
            )
    return tuple(found)

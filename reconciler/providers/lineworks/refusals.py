"""What a LINE WORKS refusal means: THE table of refusal classes, read from status, code and text.

Every 4xx answer of the link APIs is classified here and nowhere else: whether to retry it
(busy), take it as done (already in effect), or stop with a typed refusal that says what the
admin can do and whether trying again can help (`permanent`). Each rule names the doc page it
comes from or says ASSUMPTION (docs/lineworks.md#refusals). An answer no rule recognises is
shown verbatim with no advice: a guess would send the admin the wrong way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from reconciler.i18n import N_, Msg, Said, Told, say
from reconciler.providers.base import CONSOLE_PAGE
from reconciler.words import joined

__all__ = ["RULES", "Handling", "Refusal", "Rule", "classify"]


class Handling(Enum):
    """What the client and the provider do with a refusal of this class."""

    RETRY = "retry"  # it clears by itself: back off and send again, within the retry budget
    DONE = "done"  # what was asked is in effect already (an earlier answer was lost)
    REFUSE = "refuse"  # stop this change with the reason


@dataclass(frozen=True)
class Rule:
    """One class of refusal: which answers it covers and how they are handled."""

    kind: str
    handling: Handling
    permanent: bool  # trying the same change again cannot help until someone acts
    statuses: frozenset[int]
    verbs: frozenset[str]  # link, unlink, bulk: the kinds of call it applies to
    codes: frozenset[str] = frozenset()  # any of these codes matches …
    text: str | None = None  # … or the description matches this pattern (case-insensitive)
    advice: str = ""  # what the admin can do (an English msgid); {who}, {channel}, {page} …
    source: str = ""  # the doc page, or ASSUMPTION

    def matches(self, verb: str, status: int, code: str, description: str) -> bool:
        """Whether an answer to a `verb` call belongs to this class."""
        if status not in self.statuses or verb not in self.verbs:
            return False
        if not self.codes and self.text is None:
            return True
        return code in self.codes or (
            self.text is not None and re.search(self.text, description, re.IGNORECASE) is not None
        )


_MEMBER = frozenset({"link", "unlink"})
_DOCS = "https://developers.worksmobile.com/jp/docs/"
#: First match wins: the busy answer also says "already", so it comes before "already in effect".
RULES: tuple[Rule, ...] = (
    Rule(
        "busy",
        Handling.RETRY,
        False,
        frozenset({400, 409}),
        _MEMBER,
        frozenset({"ALREADY_IN_PROGRESS", "IN_PROGRESS"}),
        r"being (granted|deleted|revoked)|in progress",
        source=_DOCS + "user-link-to-line-create (a member being granted or deleted); "
        "the answer's wording ASSUMPTION",
    ),
    Rule(
        "already_in_effect",
        Handling.DONE,
        False,
        frozenset({400}),
        frozenset({"link"}),
        frozenset({"ALREADY_LINKED"}),
        r"already (granted|linked|has)",
        source=_DOCS + "user-link-to-line-create (a member granted already); wording ASSUMPTION",
    ),
    Rule(
        "missing_scope",
        Handling.REFUSE,
        True,
        frozenset({401, 403}),
        frozenset({"link", "unlink", "bulk", "read"}),
        frozenset({"INSUFFICIENT_SCOPE", "INVALID_SCOPE"}),
        r"scope",
        N_(
            "the app's token lacks the `user` scope: add it in the Developer Console (API 2.0 > "
            "the app > OAuth Scopes); the free plan does not offer it "
            "(docs/lineworks.md#1-setup-in-the-developer-console)"
        ),
        _DOCS + "auth-scope; the code/wording ASSUMPTION",
    ),
    Rule(
        "all_members_mode",
        Handling.REFUSE,
        True,
        frozenset({403}),
        _MEMBER,
        advice=N_(
            "the {channel} channel grants all members, and the API changes no member one "
            "by one then: restrict it to listed members first (a manual step: {page} > "
            "{channel_label} > Permissions > Grant by member), then plan again"
        ),
        source=_DOCS + "user-link-to-line-create, user-link-to-line-delete",
    ),
    Rule(
        "unknown_member",
        Handling.REFUSE,
        True,
        frozenset({404}),
        _MEMBER,
        advice=N_(
            "{who} is not in the LINE WORKS directory (deleted or never added): remove "
            "them from the file or add them to the directory, then plan again"
        ),
        source=_DOCS + "user-link-to-line-create (404 listed; its meaning ASSUMPTION)",
    ),
    Rule(
        "name_rule",
        Handling.REFUSE,
        True,
        frozenset({400}),
        frozenset({"link"}),
        text=r"emoji|prohibited|forbidden word|\bline\b|絵文字",
        advice=N_(
            "the API links nobody to LINE whose company name, login ID or name holds an "
            'emoji or the word "line": add {who} in the console instead ({page} > '
            "{channel_label} > Connected-members > Manage)"
        ),
        source=_DOCS + "user-link-to-line-create (the rule); the answer's wording ASSUMPTION",
    ),
)


@dataclass(frozen=True)
class Refusal:
    """One classified refusal: its class, how it is handled, and the words for the admin."""

    kind: str  # a Rule's kind, or "unrecognised"
    handling: Handling
    permanent: bool
    status: int
    code: str
    description: str
    advice: str = ""  # a Said: English here, said again in the reader's language

    @property
    def answer(self) -> str:
        """The API's own words: HTTP status, code, description (as they came; lwr's words
        only when the API gave none, and those in the reader's language)."""
        return Told(
            lambda t: f"HTTP {self.status} " + joined(self.code, ": ", say(self.description, t))
        )

    def reason(self) -> str:
        """The answer verbatim, then the advice when the class has one."""
        if not self.advice:
            return self.answer
        return Said.of("{answer}; {advice}", answer=self.answer, advice=self.advice)


def verb_of(operation: str) -> str:
    """link, unlink, bulk or read, from an operation such as POST /users/{userId}/link-to-line."""
    if operation.startswith("GET"):
        return "read"
    if "{userId}" not in operation:
        return "bulk"
    return "unlink" if "/unlink-to-" in operation else "link"


def classify(
    operation: str,
    status: int,
    code: str,
    description: str,
    *,
    who: str = "",
    channel: str = "",
    channel_label: str = "",
) -> Refusal:
    """The class of an answer to `operation`; `who`/`channel` only fill in the advice."""
    verb = verb_of(operation)
    for rule in RULES:
        if rule.matches(verb, status, code, description):
            advice = (
                Said.of(
                    rule.advice,
                    who=who or Msg.of("the member"),
                    channel=channel or "the",
                    # The console's names (CHANNEL_LABELS, CONSOLE_PAGE) are msgids too.
                    channel_label=Msg.of(channel_label) if channel_label else channel,
                    page=Msg.of(CONSOLE_PAGE),
                )
                if rule.advice
                else ""
            )
            return Refusal(
                rule.kind, rule.handling, rule.permanent, status, code, description, advice
            )
    return Refusal("unrecognised", Handling.REFUSE, False, status, code, description)

"""The `lineworks:` provider: member links through LINE WORKS API 2.0, the rest as manual steps.

The API can read the member directory only; every setting of the page comes from the attested
state (what admins confirmed and what lwr applied), and plans and `show` say so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reconciler.actions import Action, Change, Execution
from reconciler.console import LINEWORKS_API, effect
from reconciler.errors import Refused, TenantError, TenantRuleError
from reconciler.model import ChannelName, ChannelState, DesiredChannel, DesiredState, TenantState
from reconciler.providers.base import (
    CONSOLE_PAGE,
    BatchOutcome,
    BatchStopped,
    ConfirmChange,
    Provider,
    Refusal,
)
from reconciler.providers.lineworks.client import ApiError, LineWorksClient
from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.settings import SETTINGS
from reconciler.store.attested import (
    MEMBERS,
    AttestedStore,
    ChannelKnowledge,
    Source,
    open_attested,
)
from reconciler.store.base import default_actor

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
# Path segment of each channel in the link APIs (…/link-to-line, …/link-to-works).
_SUFFIX = {LINE: "line", LW: "works"}
# Refusal codes that mean "already as wanted" (an earlier answer was lost): done, not failed.
# ASSUMPTION: the docs say such calls are refused but name no code (docs/lineworks.md).
_ALREADY = {
    Action.ADD_MEMBER: frozenset({"ALREADY_LINKED"}),
    Action.REMOVE_MEMBER: frozenset({"NOT_LINKED"}),
}
# The console's defaults, assumed for values never attested.
_DEFAULTS: dict[str, Any] = {s.attr: s.default for s in SETTINGS}


#: Attested-state field (per channel) of the members the API refused to link for good:
#: {email: reason}. Their links are manual steps from then on (execution_of).
REFUSED_LINKS = "api_refused_links"


class LineWorksRefused(TenantRuleError):
    """LINE WORKS refused one change of an apply; earlier changes of the batch took effect.

    `permanent`: the API will never make this change (its name rule); an admin can.
    """

    def __init__(self, change_id: str, reason: str, permanent: bool = False) -> None:
        self.change_id, self.reason, self.permanent = change_id, reason, permanent
        super().__init__(f"change {change_id} refused: {reason}")


class LineWorksTenant(Provider):
    """A LINE WORKS domain reached through API 2.0 with a service account."""

    #: The page's settings and lists cannot be read: manual steps and attested values.
    ATTESTED = True
    #: What LINE WORKS API 2.0 does (docs/lineworks.md); every other action is a manual step.
    API_ACTIONS = frozenset({Action.ADD_MEMBER, Action.REMOVE_MEMBER, Action.GRANT_ALL_MEMBERS})
    #: Changes per journal batch: about 12 s of calls at 240/min, so a kill loses little.
    batch_size: int = 50

    def __init__(
        self,
        config: LineWorksConfig,
        client: LineWorksClient | None = None,
        store: AttestedStore | None = None,
        actor: Callable[[], str] | None = None,
        *,
        readonly: bool = False,
    ):
        """Use `LineWorksTenant.open(uri)`; tests may pass a client or store of their own.
        `readonly`: the attested state is read only, never created or written."""
        self.config = config
        self.key = config.key
        self.client = client or LineWorksClient(config)
        self.store = store or open_attested(
            Path(config.state_dir), config.state_url, readonly=readonly
        )
        self._actor = actor or _default_actor
        self._confirm: ConfirmChange | None = None
        self._directory: frozenset[str] | None = None
        self._provenance: dict[str, str] = {}
        #: Per channel, the members whose link the API refused for good, and why.
        self._refused: dict[ChannelName, dict[str, str]] = {}

    @classmethod
    def open(cls, uri: str, state: str | None = None, *, readonly: bool = False) -> LineWorksTenant:
        """Open the tenant named by a `lineworks:` URI (credentials from env or the query);
        `state` is --state, where the attested state lives (default $LWR_STATE);
        `readonly` for the commands that only read."""
        return cls(LineWorksConfig.from_uri(uri, state=state), readonly=readonly)

    # ------------------------------------------------------------------ Provider protocol

    def read(self) -> TenantState:
        """The directory from the API; every setting and list from the attested state."""
        directory = self.directory()
        knowledge = self.store.load(self.key)
        self._refused = {c: _refused_links(knowledge[c]) for c in ChannelName}
        provenance = {"directory": "read"}
        channels = {c: self._channel(c, knowledge[c], directory, provenance) for c in ChannelName}
        self._provenance = provenance
        return TenantState(domain=self._domain(directory), directory=directory, channels=channels)

    def directory(self) -> frozenset[str]:
        """Login emails of every member not deleted (GET /users, all pages)."""
        emails = set()
        for user in self.client.pages(
            "/users", "GET /users", "users", {"domainId": self.config.domain_id, "count": 100}
        ):
            if isinstance(user, dict) and not user.get("isDeleted") and user.get("email"):
                emails.add(str(user["email"]).lower())
        self._directory = frozenset(emails)
        return self._directory

    def domain(self) -> str:
        """LW_DOMAIN when set, else the one login domain of the directory."""
        return self._domain(self._directory if self._directory is not None else self.directory())

    def execution(self, action: Action) -> Execution:
        """`api` for member links and "grant to all"; `manual` for what has no public API."""
        return "api" if action in self.API_ACTIONS else "manual"

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply in order: API calls for member links, the manual handler for the rest.

        Each change is recorded in the attested state as soon as it took effect, so a
        failure mid-batch leaves exactly the done ones known as done.
        """
        try:
            outcome = self.apply_each(changes, keep_going=False)
        except BatchStopped as stopped:
            raise stopped.cause from stopped
        if outcome.refused:
            first = outcome.refused[0]
            raise LineWorksRefused(first.change_id, first.reason, first.permanent)

    def apply_each(self, changes: Sequence[Change], *, keep_going: bool = True) -> BatchOutcome:
        """Apply in order, one call (or one confirmed manual step) per change; a refused call
        is reported and the rest go on (or, without `keep_going`, stay unattempted).

        A refusal the API will never lift (its name rule) is remembered in the attested
        state, so that the next plan makes that member's link a manual step.
        """
        actor = self._actor()
        applied: list[str] = []
        refused: list[Refusal] = []
        for change in changes:
            try:
                self._one(change, actor)
            except LineWorksRefused as exc:
                refused.append(Refusal(change.id, exc.reason, exc.permanent))
                if exc.permanent:
                    self._remember_refusal(change, exc.reason, actor)
                if not keep_going:
                    break
                continue
            except Exception as exc:
                if applied or refused:  # part of the batch took effect: say which part
                    raise BatchStopped(BatchOutcome(tuple(applied), tuple(refused)), exc) from exc
                raise
            applied.append(change.id)
        return BatchOutcome(tuple(applied), tuple(refused))

    def execution_of(self, change: Change) -> Execution:
        """`manual` for a member link the API refused for good before; else as planned."""
        if change.action is Action.ADD_MEMBER and change.target in self._refused.get(
            change.channel, {}
        ):
            return "manual"
        return change.execution

    def _one(self, change: Change, actor: str) -> None:
        if change.action in self.API_ACTIONS and change.execution != "manual":
            self._call(change)
            self._learn(change, "applied", actor)
        else:
            self._manual(change)
            self._learn(change, "attested", actor)

    def _remember_refusal(self, change: Change, reason: str, actor: str) -> None:
        known = dict(self._refused.get(change.channel, {}))
        known[str(change.target)] = reason
        self._refused[change.channel] = known
        self.store.record(self.key, change.channel, {REFUSED_LINKS: known}, "applied", actor)

    def close(self) -> None:
        """Close connections and the attested state."""
        self.client.close()
        self.store.close()

    def __repr__(self) -> str:
        return f"LineWorksTenant({self.key!r})"

    # ------------------------------------------------------------------ manual steps

    def set_manual_handler(self, handler: ConfirmChange | None) -> None:
        """Who confirms manual steps during apply; without one, apply stops before them."""
        self._confirm = handler

    def provenance(self) -> dict[str, str]:
        """Origin of each value of the last read (`read`, `applied`, `attested`, `unknown`)."""
        return dict(self._provenance)

    def plan_notes(self, desired: DesiredState, changes: Sequence[Change]) -> tuple[str, ...]:
        """Which compared values were not read, what is assumed, and how long the API takes."""
        notes: list[str] = []
        origins: dict[str, list[str]] = {}
        for key in _managed_keys(desired):
            origins.setdefault(self._provenance.get(key, "unknown"), []).append(key)
        if origins.get("attested") or origins.get("applied"):
            keys = sorted(origins.get("attested", []) + origins.get("applied", []))
            notes.append(
                "lineworks: no public API reads these, so the plan compares the file "
                "with lwr's attested state (attested, not read): " + ", ".join(keys)
            )
        if origins.get("unknown"):
            notes.append(
                "lineworks: never read nor attested, the console default is assumed (off, "
                f"empty list): {', '.join(sorted(origins['unknown']))}. Check {CONSOLE_PAGE} "
                "and record what it shows with `lwr attest FILE`"
            )
        calls = sum(1 for c in changes if c.execution == "api")
        if calls:
            seconds = calls * self.config.rate_window / self.config.rate
            notes.append(
                f"lineworks: {calls} API call(s) at {self.config.rate:g} requests per "
                f"{self.config.rate_window:g} s take at least {_duration(seconds)}; "
                "the apply is journaled and resumes where it stopped"
            )
        manual = sum(1 for c in changes if c.execution == "manual")
        if manual:
            notes.append(
                f"lineworks: {manual} manual step(s): apply prints a checklist and "
                "waits for an admin to confirm each (non-interactive: --manual="
                "attested or --manual=skip)"
            )
        return tuple(notes)

    def attest(self, desired: DesiredState, actor: str) -> list[str]:
        """Record the file's managed values as what the console shows now."""
        recorded: list[str] = []
        for channel, want in desired.channels.items():
            values = _attestable(want, channel)
            replace = add = None
            if want.members is not None and not want.members.all_members:
                if want.members.policy == "exact":
                    replace = want.members.include
                    values[MEMBERS] = True
                else:
                    add = want.members.include
            self.store.record(
                self.key, channel, values, "attested", actor, replace=replace, add=add or ()
            )
            recorded += [f"{channel.value}.{k}" for k in sorted(values)]
            if add:
                recorded.append(f"{channel.value}.members (+{len(add)} listed)")
        return recorded

    # ------------------------------------------------------------------ plumbing

    def _channel(
        self,
        channel: ChannelName,
        known: ChannelKnowledge,
        directory: frozenset[str],
        provenance: dict[str, str],
    ) -> ChannelState:
        def value(field: str) -> Any:
            fact = known.facts.get(field)
            provenance[f"{channel.value}.{field}"] = fact.source if fact else "unknown"
            return fact.value if fact else _DEFAULTS[field]

        all_members = bool(value("all_members"))
        members_fact = known.facts.get(MEMBERS)
        if all_members:  # the list follows the mode: it is the directory
            origin = provenance[f"{channel.value}.all_members"]
        else:
            origin = (
                members_fact.source if members_fact else "applied" if known.members else "unknown"
            )
        provenance[f"{channel.value}.members"] = origin
        line = channel is LINE
        return ChannelState(
            enabled=bool(value("enabled")),
            all_members=all_members,
            # In "all members" mode the list is the directory, as the console shows it.
            members=directory if all_members else known.members & directory,
            auto_grant_new_members=bool(value("auto_grant_new_members")),
            restrict_file_transfer=bool(value("restrict_file_transfer")),
            greeting_enabled=bool(value("greeting_enabled")) if line else None,
            greeting_message=str(value("greeting_message")) if line else None,
            open_rooms={},  # room lists are not readable: side-effect counts show 0
        )

    def _domain(self, directory: frozenset[str]) -> str:
        if self.config.domain:
            return self.config.domain.lower()  # as the directory's emails are
        domains = Counter(e.rsplit("@", 1)[-1] for e in directory)
        if len(domains) != 1:
            found = ", ".join(sorted(domains)) or "no members"
            raise TenantError(
                f"cannot tell the tenant's domain from its directory ({found}); "
                "set LW_DOMAIN (or ?domain= in the tenant URI)"
            )
        return next(iter(domains))

    def _manual(self, change: Change) -> None:
        # The handler raises ManualStepsPending (naming the step) itself; this guards a
        # library caller that applies manual steps without one.
        if self._confirm is None or not self._confirm(change):
            raise Refused(
                f"refused: manual step {change.id} ({change.action.value}) was not "
                "confirmed: apply it through reconciler.workflow, which asks"
            )

    def _call(self, change: Change) -> None:
        suffix = _SUFFIX[change.channel]
        if change.action is Action.GRANT_ALL_MEMBERS:
            path, operation = f"/users/link-to-{suffix}", f"POST /users/link-to-{suffix}"
        else:
            verb = "link" if change.action is Action.ADD_MEMBER else "unlink"
            user = quote(change.target or "", safe="")
            path = f"/users/{user}/{verb}-to-{suffix}"
            operation = f"POST /users/{{userId}}/{verb}-to-{suffix}"
        try:
            self.client.wait(self.client.call("POST", path, operation), operation)
        except ApiError as exc:
            if exc.code in _ALREADY.get(change.action, frozenset()):
                return  # done by an earlier attempt whose answer was lost
            raise LineWorksRefused(
                change.id, _explain(change, exc), _name_rule(change, exc)
            ) from exc

    def _learn(self, change: Change, source: Source, actor: str) -> None:
        """Record what `change` did, as the console model says (with the API's rule that a
        link turns the channel on)."""
        what = effect(change, LINEWORKS_API)
        values = dict(what.settings)
        replace = None
        if change.target in self._refused.get(change.channel, {}) and what.add:
            known = dict(self._refused[change.channel])  # done after all: manual no more
            known.pop(str(change.target))
            self._refused[change.channel] = known
            values[REFUSED_LINKS] = known
        if what.freeze:
            # The console keeps today's members on the list when leaving "all" mode.
            replace = self._directory if self._directory is not None else self.directory()
            values[MEMBERS] = True
        self.store.record(
            self.key,
            change.channel,
            values,
            source,
            actor,
            replace=replace,
            add=sorted(what.add),
            remove=sorted(what.remove),
        )


def _explain(change: Change, exc: ApiError) -> str:
    """The documented reasons behind a refusal, and what the admin can do."""
    who = change.target or "all members"
    channel = change.channel
    if exc.status == 404:
        return f"{who} is not a member of the LINE WORKS directory ({exc})"
    if exc.status == 403:
        return (
            f"{exc}; the API refuses per-member changes while the {channel.value} channel "
            "grants all members (restrict_to_listed_members first, a manual step), and any "
            "call when the app lacks the `user` scope"
        )
    if _name_rule(change, exc):
        return (
            f"{exc}; the API refuses to link a member to LINE when the company name, the "
            'member\'s login ID or name contains an emoji or the word "line" (documented):'
            f" add {who} in the console instead ({CONSOLE_PAGE} > {channel.label} > "
            "Connected-members > Manage)"
        )
    return str(exc)


def _name_rule(change: Change, exc: ApiError) -> bool:
    """The API's documented name rule refused linking a member to LINE: no retry helps."""
    return (
        change.channel is LINE
        and change.action is Action.ADD_MEMBER
        and exc.status == 400
        and exc.code != "ALREADY_IN_PROGRESS"
    )


def _refused_links(known: ChannelKnowledge) -> dict[str, str]:
    fact = known.facts.get(REFUSED_LINKS)
    if fact is None or not isinstance(fact.value, dict):
        return {}
    return {str(k): str(v) for k, v in fact.value.items()}


def _managed_keys(desired: DesiredState) -> list[str]:
    keys: list[str] = []
    for channel, want in desired.channels.items():
        names = list(_attestable(want, channel))
        if want.members is not None:
            names += ["all_members", "members"]
        keys += [f"{channel.value}.{n}" for n in dict.fromkeys(names)]
    return keys


def _attestable(want: DesiredChannel, channel: ChannelName) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if want.enabled is not None:
        values["enabled"] = want.enabled
    if want.auto_grant_new_members is not None:
        values["auto_grant_new_members"] = want.auto_grant_new_members
    if want.restrict_file_transfer is not None:
        values["restrict_file_transfer"] = want.restrict_file_transfer
    if want.greeting is not None and channel is LINE:
        if want.greeting.enabled is not None:
            values["greeting_enabled"] = want.greeting.enabled
        if want.greeting.message is not None:
            values["greeting_message"] = want.greeting.message
    if want.members is not None:
        values["all_members"] = want.members.all_members
    return values


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _default_actor() -> str:
    return default_actor()

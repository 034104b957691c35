"""The `lineworks:` provider: member links through LINE WORKS API 2.0, the rest as manual steps.

The API can read the member directory only; every setting of the page comes from the attested
state (what admins confirmed and what lwr applied), and plans and `show` say so.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

from reconciler.actions import Action, Change, Execution
from reconciler.console import LINEWORKS_API, effect
from reconciler.errors import Refused, TenantError
from reconciler.i18n import Msg, Said, listing
from reconciler.model import ChannelName, DesiredState, TenantState
from reconciler.orgchart import OrgChart
from reconciler.providers.base import BatchOutcome, BatchStopped, ConfirmChange, Provider, Refusal
from reconciler.providers.lineworks import notes, orgunits, reads
from reconciler.providers.lineworks.channels import channel_state
from reconciler.providers.lineworks.client import ApiError, LineWorksClient
from reconciler.providers.lineworks.config import LineWorksConfig
from reconciler.providers.lineworks.estimate import estimate, lane_of
from reconciler.providers.lineworks.lanes import BatchRun, Lanes
from reconciler.providers.lineworks.refusals import Handling, classify
from reconciler.providers.lineworks.refused import REFUSED_LINKS, LineWorksRefused, refused_links
from reconciler.store.attested import (
    MEMBERS,
    AttestedStore,
    Source,
    open_attested,
)
from reconciler.store.base import default_actor

__all__ = ["REFUSED_LINKS", "LineWorksRefused", "LineWorksTenant"]

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
# Path segment of each channel in the link APIs (…/link-to-line, …/link-to-works).
_SUFFIX = {LINE: "line", LW: "works"}


class LineWorksTenant(Provider):
    """A LINE WORKS domain reached through API 2.0 with a service account."""

    #: The page's settings and lists cannot be read: manual steps and attested values.
    ATTESTED = True
    #: Org units and groups come from the Directory API (orgunits.py).
    READS_ORG_CHART = True
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
        self._people: orgunits.People | None = None  # the last GET /users, units and ids too
        self._chart_cost: orgunits.ChartCost | None = None
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
        return self._state(self.directory())

    def reread(self, *, waited: bool) -> TenantState:
        """Under the lock: the attested state afresh (another lwr apply writes it), the
        directory again only when a prompt waited: GET /users costs a request per 100
        members (docs/lineworks.md)."""
        if waited or self._directory is None:
            return self.read()
        return self._state(self._directory)

    def _state(self, directory: frozenset[str]) -> TenantState:
        knowledge = self.store.load(self.key)
        self._refused = {c: refused_links(knowledge[c]) for c in ChannelName}
        provenance = {"directory": "read"}
        channels = {c: channel_state(c, knowledge[c], directory, provenance) for c in ChannelName}
        self._provenance = provenance
        return TenantState(domain=self._domain(directory), directory=directory, channels=channels)

    def directory(self) -> frozenset[str]:
        """Login emails of every member, deleted and pending ones left out (GET /users,
        all pages): neither can hold a permission the console shows (docs/lineworks.md)."""
        self._people = orgunits.read_people(self.client, self.config.domain_id)
        self._directory = self._people.emails
        return self._directory

    def org_chart(self, *, groups: frozenset[str] | None = None) -> OrgChart:
        """Org units and groups from the Directory API, on the same limiters and budget
        (orgunits.py); who is in which unit comes with GET /users, read only if no read
        did. Members are read of the `groups` named only (every group when None): one
        request per group and 100 members. What it cost is said in the plan's notes."""
        orgunits.check_scopes(self.config.scope)
        started, sent = self.client.now(), self.client.requests
        if self._people is None:
            self.directory()
        assert self._people is not None
        chart = orgunits.read_chart(self.client, self.config.domain_id, self._people, groups)
        took = self.client.now() - started
        self._chart_cost = orgunits.ChartCost(self.client.requests - sent, took)
        return chart

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
        """Apply a batch, reporting each change: API calls side by side, one worker per API
        (lanes.py), each API in order; a manual step waits for the calls before it and then
        for its admin. A refused call is reported and the rest go on; without `keep_going`
        (--fail-fast) the calls go one at a time and nothing is sent after a refusal.

        A refusal the API will never lift (its name rule) is remembered in the attested
        state, so that the next plan makes that member's link a manual step.
        """
        run = BatchRun(self._actor(), keep_going)
        lanes = Lanes(
            self._call, lambda exc: not keep_going or not isinstance(exc, LineWorksRefused)
        )
        try:
            for change in changes:
                if self._by_api(change):
                    # Stopping at the first refusal (--fail-fast) is exact one at a time only.
                    lanes.submit(lane_of(change) if keep_going else "api", change)
                    continue
                self._settle(lanes, run)  # a manual step comes after the calls before it
                if lanes.stopping:
                    break
                try:
                    self._manual(change)
                    self._learn(change, "attested", run.actor)
                except Exception as exc:
                    run.fail(change, exc, lanes)
                    break
                run.applied.append(change.id)
            self._settle(lanes, run)
        except BaseException:  # Ctrl-C twice, a store error: record what was answered
            lanes.stop()
            with suppress(Exception):
                self._settle(lanes, run)
            raise
        finally:
            lanes.close()
        return run.outcome()

    def lane(self, change: Change) -> str | None:
        """The API a change's request goes to (manual steps: their own lane): each API has
        its own budget, so the executor batches the APIs of a phase together."""
        return lane_of(change) if self._by_api(change) else "manual"

    def estimate(self, changes: Sequence[Change]) -> float | None:
        """Seconds the API calls of `changes` take at the pace in force (estimate.py; the
        plan set it, half the limit for a long run)."""
        est = estimate(changes, self.client.limit, self.config.rate_window)
        return est.seconds * est.rate / self.client.pace

    def _by_api(self, change: Change) -> bool:
        return change.action in self.API_ACTIONS and change.execution != "manual"

    def _settle(self, lanes: Lanes, run: BatchRun) -> None:
        """Record each answer as it comes, on this thread (the store's)."""
        for answer in lanes.answers():
            change, error = answer.change, answer.error
            if not answer.sent:
                continue
            if error is None:
                self._learn(change, "applied", run.actor)
                run.applied.append(change.id)
            elif isinstance(error, LineWorksRefused):
                run.refused.append(Refusal(change.id, error.reason, error.permanent))
                if error.permanent:
                    self._remember_refusal(change, error.reason, run.actor)
                if not run.keep_going:
                    lanes.stop()
            else:
                run.fail(change, error, lanes)

    def execution_of(self, change: Change) -> Execution:
        """`manual` for a member link the API refused for good before; else as planned."""
        if change.action is Action.ADD_MEMBER and change.target in self._refused.get(
            change.channel, {}
        ):
            return "manual"
        return change.execution

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
        """Which compared values were not read, what is assumed, and how long the API takes;
        sets the pace of the apply that follows (half the limit for a run of over 30 min)."""
        est = estimate(changes, self.client.limit, self.config.rate_window)
        self.client.plan_run(est.halved)
        members = len(self._directory or ())
        return notes.plan_notes(
            self._provenance, desired, changes, est, members, chart=self._chart_cost
        )

    def contradicted(self, state: TenantState) -> tuple[str, ...]:
        """Attested members link-url says have no external permission (reads.py)."""
        return reads.contradicted(self.client, state)

    def attest(self, desired: DesiredState, actor: str) -> list[str]:
        """Record the file's managed values as what the console shows now."""
        recorded: list[str] = []
        for channel, want in desired.channels.items():
            values = notes.attestable(want, channel)
            replace = add = None
            if want.members is not None and not want.members.all_members:
                if want.members.policy == "exact":
                    replace = want.members.wanted
                    values[MEMBERS] = True
                else:
                    add = want.members.wanted
            self.store.record(
                self.key, channel, values, "attested", actor, replace=replace, add=add or ()
            )
            recorded += [f"{channel.value}.{k}" for k in sorted(values)]
            if add:
                recorded.append(f"{channel.value}.members (+{len(add)} listed)")
        return recorded

    # ------------------------------------------------------------------ plumbing

    def _domain(self, directory: frozenset[str]) -> str:
        if self.config.domain:
            return self.config.domain.lower()  # as the directory's emails are
        domains = Counter(e.rsplit("@", 1)[-1] for e in directory)
        if len(domains) != 1:
            raise TenantError(
                Said.of(
                    "cannot tell the tenant's domain from its directory ({found}); set "
                    "LW_DOMAIN (or ?domain= in the tenant URI)",
                    found=listing(sorted(domains)) if domains else Msg.of("no members"),
                )
            )
        return next(iter(domains))

    def _manual(self, change: Change) -> None:
        # The handler raises ManualStepsPending (naming the step) itself; this guards a
        # library caller that applies manual steps without one.
        if self._confirm is None or not self._confirm(change):
            raise Refused(
                Said.of(
                    "refused: manual step {change} ({action}) was not confirmed: apply it "
                    "through reconciler.workflow, which asks",
                    change=change.id,
                    action=change.action.value,
                )
            )

    def _call(self, change: Change, stop: threading.Event | None = None) -> None:
        """One change's request (on a lane's worker thread: it writes nothing)."""
        suffix = _SUFFIX[change.channel]
        if change.action is Action.GRANT_ALL_MEMBERS:
            path, operation = f"/users/link-to-{suffix}", f"POST /users/link-to-{suffix}"
        else:
            verb = "link" if change.action is Action.ADD_MEMBER else "unlink"
            user = quote(change.target or "", safe="")
            path = f"/users/{user}/{verb}-to-{suffix}"
            operation = f"POST /users/{{userId}}/{verb}-to-{suffix}"
        try:
            self.client.wait(self.client.call("POST", path, operation, stop=stop), operation)
        except ApiError as exc:
            refusal = exc.refusal
            if refusal.kind != "failed":  # fill in who and where for the advice
                refusal = classify(
                    operation,
                    exc.status,
                    exc.code,
                    exc.description,
                    who=change.target or Said.of("all members"),
                    channel=change.channel.value,
                    channel_label=change.channel.label,
                )
            if refusal.handling is Handling.DONE:
                return  # done by an earlier attempt whose answer was lost
            raise LineWorksRefused(change.id, refusal.reason(), refusal.permanent, refusal) from exc

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


def _default_actor() -> str:
    return default_actor()

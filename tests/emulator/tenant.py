"""The emulated LINE WORKS domain: directory, both channels, the documented rules of the link APIs.

Plain Python, no HTTP: server.py exposes it; tests also drive its "console" directly (the admin).
"""

from __future__ import annotations

import itertools
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.directory import OrgData, seed_departments
from reconciler import console
from reconciler.actions import Change
from reconciler.model import ChannelName, ChannelState, TenantState
from reconciler.settings import SETTINGS

LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS


@dataclass
class User:
    """One member of the directory."""

    user_id: str
    email: str
    name: str
    external_key: str | None = None
    deleted: bool = False
    pending: bool = False  # invited, not joined yet (isPending: ASSUMPTION, docs/lineworks.md)


@dataclass
class Channel:
    """One channel as the console holds it: a field per row of reconciler.settings (same
    name as the model's attribute), and the connected-members list."""

    enabled: bool = False
    all_members: bool = False
    linked: set[str] = field(default_factory=set)
    auto_grant_new_members: bool = False
    restrict_file_transfer: bool = False
    greeting_enabled: bool | None = None
    greeting_message: str | None = None

    def take(self, state: ChannelState) -> None:
        """Every setting of the table from `state` (the list is the caller's)."""
        for row in SETTINGS:
            setattr(self, row.attr, getattr(state, row.attr))


@dataclass
class Operation:
    """An accepted (202) operation: its effect lands when `due` has passed."""

    op_id: str
    due: float
    effect: Callable[[], None]
    key: tuple[str, ChannelName] | None
    done: bool = False


@dataclass(frozen=True)
class Answer:
    """What a link API call answers: status, JSON body, and an operation id for 202."""

    status: int
    body: dict[str, object] | None = None
    op_id: str | None = None


def _refuse(status: int, code: str, description: str) -> Answer:
    return Answer(status, {"code": code, "description": description})


def _has_ng_word(text: str) -> bool:
    """Emoji or the word "line", which the LINE link API refuses (documented)."""
    if "line" in text.lower():
        return True
    return any(unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF for ch in text)


class EmulatedTenant:
    """A LINE WORKS domain with the console's state and the link APIs' documented rules."""

    def __init__(
        self,
        domain: str = "example.co.jp",
        domain_id: str = "10000001",
        company_name: str = "Example Co.",
        *,
        pending: float = 0.0,
        bulk_pending: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.domain, self.domain_id, self.company_name = domain, domain_id, company_name
        self.pending, self.bulk_pending, self.clock = pending, bulk_pending, clock
        self.users: dict[str, User] = {}
        self.channels = {LINE: Channel(greeting_enabled=False, greeting_message=""), LW: Channel()}
        self.operations: dict[str, Operation] = {}
        self._busy: dict[tuple[str, ChannelName], str] = {}
        self._ids = itertools.count(1)
        self.lock = threading.RLock()
        self.org = OrgData()  # org units and groups (directory.py)

    # ------------------------------------------------------------------ seeding, console

    def add_user(self, email: str, name: str = "", external_key: str | None = None) -> User:
        """A member joins the directory (no auto-grant: seeding, not a hire)."""
        with self.lock:
            user = User(
                f"user-{next(self._ids):06d}",
                email.lower(),
                name or email.split("@")[0],
                external_key,
            )
            self.users[user.email] = user
            return user

    def join(self, email: str, name: str = "") -> User:
        """A new hire: auto-grant puts them on the lists of channels that are on and listed."""
        with self.lock:
            user = self.add_user(email, name)
            for ch in self.channels.values():
                if ch.enabled and ch.auto_grant_new_members and not ch.all_members:
                    ch.linked.add(user.email)
            return user

    def seed(self, state: TenantState, names: dict[str, str] | None = None) -> None:
        """Make the domain match `state` (directory, settings, lists)."""
        with self.lock:
            for email in sorted(state.directory):
                if email not in self.users:
                    self.add_user(email, (names or {}).get(email, ""))
            for name, cs in state.channels.items():
                ch = self.channels[name]
                ch.take(cs)
                ch.linked = set() if cs.all_members else set(cs.members)

    def seed_departments(self) -> None:
        """The demo company's departments and groups over today's members (directory.py)."""
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: u.user_id)
            seed_departments(self.org, [u.email for u in users], lambda e: self.users[e].user_id)

    def console_apply(self, change: Change) -> None:
        """The admin does a manual step in the console, as the console model says.

        Not refused: the admin may act on a page lwr only believes it knows (the point of
        manual steps), so the model only says what the click does.
        """
        with self.lock:
            before = self.snapshot()
            after = console.step(before, [change], console.OBSERVE)
            ch, new = self.channels[change.channel], after.channels[change.channel]
            if new is before.channels[change.channel]:
                return
            ch.take(new)
            if not new.all_members:  # in "all" mode the list is the directory, kept apart
                ch.linked = set(new.members)

    def snapshot(self) -> TenantState:
        """The domain as the console shows it now (after due operations landed)."""
        with self.lock:
            self.settle()
            directory = frozenset(e for e, u in self.users.items() if not (u.deleted or u.pending))
            return TenantState(
                self.domain,
                directory,
                {
                    name: ChannelState(
                        members=directory if ch.all_members else frozenset(ch.linked) & directory,
                        **{row.attr: getattr(ch, row.attr) for row in SETTINGS},
                    )
                    for name, ch in self.channels.items()
                },
            )

    # ------------------------------------------------------------------ the API's rules

    def find(self, user_id: str) -> User | None:
        """A user by login email, resource id, or externalKey:{key} (Directory docs)."""
        with self.lock:
            if user_id.startswith("externalKey:"):
                key = user_id.removeprefix("externalKey:")
                found = [u for u in self.users.values() if u.external_key == key]
            else:
                found = [
                    u
                    for u in self.users.values()
                    if u.email == user_id.lower() or u.user_id == user_id
                ]
            return found[0] if found and not found[0].deleted else None

    def link(self, channel: ChannelName, user_id: str, grant: bool) -> Answer:
        """POST /users/{userId}/link-to-… or unlink-to-…, with the documented refusals."""
        with self.lock:
            self.settle()
            user = self.find(user_id)
            if user is None:
                return _refuse(404, "NOT_FOUND", "no such member")
            ch = self.channels[channel]
            if ch.all_members:
                return _refuse(
                    403,
                    "FORBIDDEN",
                    "the permission is granted to all members; "
                    "members cannot be changed one by one",
                )
            if (user.email, channel) in self._busy:  # as the answer was seen on a real domain
                return _refuse(400, "INVALID_PARAMETER", "already being granted or deleted")
            if (
                grant
                and channel is LINE
                and any(_has_ng_word(t) for t in (self.company_name, user.email, user.name))
            ):
                return _refuse(
                    400,
                    "INVALID_PARAMETER",
                    "the company name, login ID or "
                    "member name contains an emoji or "
                    "a prohibited word",
                )
            if not grant and not ch.enabled:
                return _refuse(403, "FORBIDDEN", "the channel is off")
            if grant and user.email in ch.linked:  # documented refusal; wording ASSUMPTION
                return _refuse(400, "INVALID_PARAMETER", "the member is already granted")
            if not grant and user.email not in ch.linked:
                # The docs list no 400 for unlink: revoking what is not there is taken as
                # done (ASSUMPTION, docs/lineworks.md).
                return Answer(204)

            def effect(email: str = user.email) -> None:
                if grant:
                    ch.linked.add(email)
                    ch.enabled = True  # documented: a grant turns the channel on
                else:
                    ch.linked.discard(email)

            return self._run(effect, self.pending, (user.email, channel))

    def link_all(self, channel: ChannelName) -> Answer:
        """POST /users/link-to-…: every member, mode "grant to all members", always 202."""
        with self.lock:
            self.settle()
            ch = self.channels[channel]

            def effect() -> None:
                ch.enabled, ch.all_members = True, True

            return self._run(effect, max(self.bulk_pending, 1e-6), None)

    def link_url(self, user_id: str) -> Answer:
        """GET /users/{userId}/link-url: only members with an external permission get one."""
        with self.lock:
            self.settle()
            user = self.find(user_id)
            if user is None:
                return _refuse(404, "NOT_FOUND", "no such member")
            linked = any(
                ch.enabled and (ch.all_members or user.email in ch.linked)
                for ch in self.channels.values()
            )
            if not linked:
                return _refuse(403, "FORBIDDEN", "the member has no external permission")
            return Answer(
                200, {"userId": user.user_id, "linkUrl": f"https://works.do/{user.user_id}"}
            )

    def operation(self, op_id: str) -> Answer:
        """GET of an accepted operation's status (see docs/lineworks.md: an assumption)."""
        with self.lock:
            self.settle()
            op = self.operations.get(op_id)
            if op is None:
                return _refuse(404, "NOT_FOUND", "no such operation")
            return Answer(
                200, {"operationId": op_id, "status": "SUCCEEDED" if op.done else "IN_PROGRESS"}
            )

    def wait_settled(self, timeout: float = 5.0) -> None:
        """Wait until every accepted operation has landed (202 means accepted, not done)."""
        with self.lock:
            due = max((op.due for op in self.operations.values() if not op.done), default=0.0)
        time.sleep(max(0.0, min(timeout, due - self.clock())))

    def settle(self) -> None:
        """Land every accepted operation whose time has come."""
        now = self.clock()
        for op in self.operations.values():
            if not op.done and op.due <= now:
                op.effect()
                op.done = True
                if op.key is not None:
                    self._busy.pop(op.key, None)

    def _run(
        self, effect: Callable[[], None], pending: float, key: tuple[str, ChannelName] | None
    ) -> Answer:
        if pending <= 0:
            effect()
            return Answer(204)
        op_id = f"op-{next(self._ids):06d}"
        self.operations[op_id] = Operation(op_id, self.clock() + pending, effect, key)
        if key is not None:
            self._busy[key] = op_id
        return Answer(202, None, op_id)

    def users_page(self, offset: int, count: int) -> tuple[list[dict[str, object]], int | None]:
        """One page of GET /users and the next offset (None at the end)."""
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: u.user_id)
            page = users[offset : offset + count]
            rows: list[dict[str, object]] = [
                {
                    "domainId": int(self.domain_id),
                    "userId": u.user_id,
                    "email": u.email,
                    "userExternalKey": u.external_key,
                    "isDeleted": u.deleted,
                    "isPending": u.pending,
                    "userName": {"lastName": u.name, "firstName": ""},
                    "organizations": self.org.organizations(u.email, self.domain_id),
                }
                for u in page
            ]
            end = offset + count
            return rows, end if end < len(users) else None

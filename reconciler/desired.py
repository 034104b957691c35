"""The desired-state file: bytes → safe YAML → JSON Schema → semantic checks → DesiredState.

Owns loading and the semantic checks (duplicates, members unknown to the directory, the
tenant's domain); the JSON Schema step and its wording are reconciler.desired_schema.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from reconciler import yamlsafe
from reconciler.desired_schema import (
    INCLUDE,
    MAX_PROBLEMS,
    explain,
    include_lists,
    more_problems,
    schema_problems,
)
from reconciler.errors import InputError, Omitted, Problem, UsageError, WrongTenant
from reconciler.i18n import Said
from reconciler.model import (
    ChannelName,
    DesiredChannel,
    DesiredState,
    GreetingSpec,
    MembersSpec,
    SafetySettings,
)
from reconciler.sourcelines import FileLines
from reconciler.yamlsafe import Locator, Path, format_path

__all__ = ["MAX_PROBLEMS", "check_against_tenant", "explain", "load_desired", "parse_desired"]

#: The path that means "read the desired file from standard input"; its name in messages.
STDIN, STDIN_NAME = "-", "<stdin>"
SUGGEST_DIRECTORY_LIMIT = 5000  # difflib against a bigger directory is too slow to be worth it
MAX_SUGGESTIONS = 10  # each suggestion scans the whole directory


def load_desired(path: str | os.PathLike[str]) -> DesiredState:
    """Read and validate a desired-state file (`-`: standard input); InputError lists every
    problem found."""
    source = os.fspath(path)
    if source == STDIN:
        return parse_desired(yamlsafe.read_stdin_capped(STDIN_NAME), STDIN_NAME)
    return parse_desired(yamlsafe.read_capped(path, source), source)


def parse_desired(data: bytes, source: str) -> DesiredState:
    """Validate a desired-state file's bytes (named `source` in messages) into a DesiredState."""
    doc = yamlsafe.load_yaml(data, source)
    if is_saved_plan_document(doc.data):  # a dozen schema errors would not say what it is
        if source == STDIN_NAME:  # neither command reads a saved plan from stdin
            raise UsageError(
                Said.of(
                    "{source} is a saved plan (made by `lwr plan --out`), not a desired-state "
                    "file: save it to a FILE and use `lwr show-plan FILE` to read it, or "
                    "`lwr apply FILE` to apply it",
                    source=source,
                )
            )
        raise UsageError(
            Said.of(
                "{source} is a saved plan (made by `lwr plan --out`), not a desired-state file: "
                "use `lwr show-plan {source}` to read it, or `lwr apply {source}` to apply it",
                source=source,
            )
        )
    problems = list(doc.problems)
    problems.extend(schema_problems(doc.data, doc.locate, source))
    members, duplicates = _members(doc.data, doc.locate, source)
    invalid = {p.path for p in problems}  # "duplicate not-an-email" would only add noise
    problems.extend(d for d in duplicates if d.path not in invalid)
    if problems:
        raise InputError(_capped(sorted(problems, key=lambda p: (p.line, p.column, p.path))))
    state = _desired_state(
        doc.data, members, source, hashlib.sha256(data).hexdigest(), Locator.deferred(doc.text)
    )
    return replace(state, lines=FileLines.read(doc.data, doc.locate))


def is_saved_plan_document(data: object) -> bool:
    """A saved plan's top level has `format_version`; a desired file's has `version`, and
    its schema allows no `format_version`."""
    return isinstance(data, dict) and "format_version" in data and "version" not in data


def check_against_tenant(desired: DesiredState, domain: str, directory: frozenset[str]) -> None:
    """Refuse a file meant for another tenant; InputError for members not in its directory."""
    locate = desired.locate or (lambda _path: (0, 0))
    if desired.tenant.lower() != domain.lower():
        line, column = locate(("tenant",))
        where = f"{desired.source}:{line}:{column}: " if line else f"{desired.source}: "
        raise WrongTenant(
            Said.of(
                "{where}tenant: the file is for {wanted} but the target tenant is {domain}; "
                "point --tenant (or LWR_TENANT) at {tenant}, or fix tenant: in the file",
                where=where,
                wanted=repr(desired.tenant),
                domain=repr(domain),
                tenant=desired.tenant,
            )
        )
    unknown = _unknown_members(desired, domain, directory)
    problems = list(itertools.islice(unknown, MAX_PROBLEMS))
    if problems:
        rest = sum(1 for _ in unknown)  # counted without keeping a million Problems
        if rest:
            problems.append(
                more_problems(
                    problems[0].file,
                    rest,
                    Said.counted(
                        "{n:,} more member not in the directory not shown",
                        "{n:,} more members not in the directory not shown",
                        rest,
                    ),
                )
            )
        raise InputError(_capped(sorted(problems, key=lambda p: (p.line, p.column, p.path))))


def _capped(problems: list[Problem]) -> list[Problem]:
    """The first MAX_PROBLEMS, then one line counting the rest (the Omitted ones included)."""
    shown = [p for p in problems if not isinstance(p, Omitted)]
    rest = sum(p.count for p in problems if isinstance(p, Omitted))
    rest += max(0, len(shown) - MAX_PROBLEMS)
    if not rest:
        return shown
    head = shown[:MAX_PROBLEMS]
    return [
        *head,
        Problem(
            (head or problems)[0].file,
            0,
            0,
            "",
            Said.of("{rest:,} more problems not shown", rest=rest),
            Said.of("fix the ones above and run again"),
        ),
    ]


# --- semantic checks ------------------------------------------------------------------------


def _members(
    data: Any, locate: Locator, source: str
) -> tuple[dict[str, frozenset[str]], list[Problem]]:
    """Each channel's members, lowercased; duplicates (ignoring case) as Problems."""
    members: dict[str, frozenset[str]] = {}
    problems: list[Problem] = []
    for channel, include in include_lists(data, [c.value for c in ChannelName]):
        try:
            # Lists are usually lowercase already: one check of the joined text then saves
            # lowercasing every item (a third of the time spent here on 100k members).
            joined = "".join(include)
            unique = frozenset(
                include if joined.islower() or not joined else map(str.lower, include)
            )
        except TypeError:  # a non-string item, already a schema problem
            unique = frozenset(m.lower() for m in include if isinstance(m, str))
        members[channel] = unique
        if len(unique) != len(include):
            shown = list(
                itertools.islice(_duplicates(channel, include, locate, source), MAX_PROBLEMS)
            )
            problems.extend(shown)
            # Counted, not located: a million copies of one name must not take a minute.
            rest = sum(isinstance(m, str) for m in include) - len(unique) - len(shown)
            if rest > 0:
                problems.append(
                    more_problems(
                        source,
                        rest,
                        Said.counted(
                            "{n:,} more duplicate member not shown",
                            "{n:,} more duplicate members not shown",
                            rest,
                        ),
                        ("external_messaging", channel, *INCLUDE),
                    )
                )
    return members, problems


def _duplicates(
    channel: str, include: list[Any], locate: Locator, source: str
) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, member in enumerate(include):
        if not isinstance(member, str):
            continue
        j = first.setdefault(member.lower(), i)
        if j != i:
            base: Path = ("external_messaging", channel, *INCLUDE)
            first_line, _ = locate((*base, j))
            line, column = locate((*base, i))
            yield Problem(
                source,
                line,
                column,
                format_path((*base, i)),
                Said.of(
                    "duplicate member {member} (first listed on line {line}, as {first})",
                    member=member,
                    line=first_line,
                    first=format_path((*base, j)),
                ),
                Said.of("list each member once; case does not matter"),
            )


def _desired_state(
    data: dict[str, Any],
    members: dict[str, frozenset[str]],
    source: str,
    digest: str,
    locate: Locator,
) -> DesiredState:
    channels = {
        ChannelName(name): _channel(spec, members.get(name, frozenset()))
        for name, spec in data.get("external_messaging", {}).items()
    }
    # Domains are case-insensitive; lower-case is how tenants report theirs, as members are.
    return DesiredState(
        version=int(data["version"]),
        tenant=data["tenant"].lower(),
        channels=channels,
        safety=_safety(data.get("safety", {})),
        source=source,
        digest=digest,
        locate=locate,
        document=data,
    )


def _channel(spec: dict[str, Any], include: frozenset[str]) -> DesiredChannel:
    greeting = spec.get("greeting")
    members = spec.get("members")
    return DesiredChannel(
        enabled=spec.get("enabled"),
        auto_grant_new_members=spec.get("auto_grant_new_members"),
        restrict_file_transfer=spec.get("restrict_file_transfer"),
        greeting=None
        if greeting is None
        else GreetingSpec(greeting.get("enabled"), greeting.get("message")),
        members=(
            None
            if members is None
            else MembersSpec(True)
            if members == "all"
            else MembersSpec(
                False,
                members.get("policy", "exact"),
                include,
                tuple(members.get("include_orgunits", ())),
                tuple(members.get("include_groups", ())),
                frozenset(m.lower() for m in members.get("exclude", ())),
            )
        ),
    )


def _safety(spec: dict[str, Any]) -> SafetySettings:
    defaults = SafetySettings()
    return SafetySettings(
        max_member_removals=int(spec.get("max_member_removals", defaults.max_member_removals)),
        max_member_removal_percent=float(
            spec.get("max_member_removal_percent", defaults.max_member_removal_percent)
        ),
        protect_channels=frozenset(ChannelName(c) for c in spec.get("protect_channels", ())),
    )


# --- against a tenant -----------------------------------------------------------------------


def _unknown_members(
    desired: DesiredState, domain: str, directory: frozenset[str]
) -> Iterator[Problem]:
    lowered: frozenset[str] | None = None
    suggestions = MAX_SUGGESTIONS if len(directory) < SUGGEST_DIRECTORY_LIMIT else 0
    candidates = sorted(directory) if suggestions else []
    for channel, spec in desired.channels.items():
        if spec.members is None or spec.members.all_members:
            continue
        for key, listed in (("include", spec.members.include), ("exclude", spec.members.exclude)):
            unknown = listed - directory
            if unknown and lowered is None:
                lowered = frozenset(d.lower() for d in directory)  # only a mixed-case directory
            if lowered is not None:
                unknown -= lowered
            base: Path = ("external_messaging", channel.value, "members", key)
            for index, member in _ordered(desired.locate, base, unknown):
                path = (*base, index) if index is not None else base
                line, column = desired.locate(path) if desired.locate else (0, 0)
                hint = Said.of("not a member of {domain}", domain=domain)
                if suggestions > 0:
                    suggestions -= 1
                    close = difflib.get_close_matches(member, candidates, n=1, cutoff=0.8)
                    if close:
                        hint = Said.of(
                            "did you mean {close}? not a member of {domain}",
                            close=close[0],
                            domain=domain,
                        )
                yield Problem(
                    desired.source,
                    line,
                    column,
                    format_path(path),
                    Said.of(
                        "{member} is not a member of tenant {domain}",
                        member=member,
                        domain=domain,
                    ),
                    hint,
                )


def _ordered(locate: object, base: Path, members: frozenset[str]) -> list[tuple[int | None, str]]:
    """Members with their index in the file's list (file order), when the file is at hand."""
    if not isinstance(locate, Locator):
        return [(None, m) for m in sorted(members)]
    found = [(locate.find_item(base, m), m) for m in members]
    return sorted(found, key=lambda f: (f[0] is None, f[0] or 0, f[1]))

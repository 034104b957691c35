"""The Plan: state digest sensitivity, saved-plan JSON round trip, format-version rule."""

from __future__ import annotations

from dataclasses import replace

import jsonschema
import pytest
from builders import DOMAIN, DesiredChannel, channel_state, desired, emails, listed, tenant

from reconciler.errors import InputError
from reconciler.plan import Plan, make_plan, state_digest
from reconciler.resources import load_schema

STAFF = frozenset(f"m{i}@{DOMAIN}" for i in range(10))


def with_line(members: frozenset[str], directory: frozenset[str] = STAFF, **kw: object) -> str:
    return state_digest(tenant(directory, line=channel_state(members=members, **kw)))


@pytest.mark.parametrize(
    "members",
    [
        frozenset(sorted(STAFF)[:2]),  # short list
        frozenset(sorted(STAFF)[:9]),
    ],
)  # nearly everyone
def test_digest_changes_with_every_list_edit(members: frozenset[str]) -> None:
    base = with_line(members)
    missing = sorted(STAFF - members)[0]
    present = sorted(members)[0]
    assert with_line(members | {missing}) != base
    assert with_line(members - {present}) != base
    assert with_line(members, STAFF | {f"new@{DOMAIN}"}) != base  # a new hire
    assert with_line(members, restrict_file_transfer=True) != base
    assert with_line(members) == base


def test_digest_ignores_room_counts() -> None:
    members = frozenset(sorted(STAFF)[:3])
    assert with_line(members) == with_line(members, open_rooms={sorted(members)[0]: 5})


def test_saved_plan_round_trips_and_follows_its_schema() -> None:
    current = tenant(
        emails("alice", "bob", "carol"),
        line=channel_state(members=emails("carol"), greeting_enabled=False),
    )
    want = desired(line=DesiredChannel(members=listed("alice", "bob")))
    plan = make_plan(want, current, "local:/t.db")
    data = plan.to_json()
    jsonschema.validate(data, load_schema("plan.schema.json"))
    again = Plan.from_json(data)
    assert again.changes == plan.changes and again.digest == plan.digest
    assert [c.side_effects for c in again.changes] == [c.side_effects for c in plan.changes]


def test_other_major_formats_are_refused_and_minor_accepted() -> None:
    plan = make_plan(desired(line=DesiredChannel(enabled=True)), tenant(STAFF), "local:/t.db")
    data = plan.to_json()
    assert Plan.from_json({**data, "format_version": "2.7"}).tenant == DOMAIN
    with pytest.raises(InputError, match=r"format_version '3\.0'"):
        Plan.from_json({**data, "format_version": "3.0"})
    with pytest.raises(InputError, match="does not carry the desired document"):
        Plan.from_json({**data, "format_version": "1.0"})  # made before 2.0: re-plan


def test_plan_digest_pins_content() -> None:
    plan = make_plan(
        desired(line=DesiredChannel(members=listed("alice"))),
        tenant(STAFF | emails("alice"), line=channel_state()),
        "local:/t.db",
    )
    same = replace(
        make_plan(
            desired(line=DesiredChannel(members=listed("alice"))),
            tenant(STAFF | emails("alice"), line=channel_state()),
            "local:/t.db",
        ),
        created_at=plan.created_at,
    )
    assert same.digest == plan.digest
    assert replace(plan, tenant_uri="local:/other.db").digest != plan.digest
    assert replace(plan, changes=()).digest != plan.digest


@pytest.mark.parametrize("added", [0, 1, 999, 1000, 2501])
def test_plan_digest_is_the_sha256_of_the_whole_saved_document(added: int) -> None:
    """The digest is streamed a chunk of changes at a time (apply needs only the hash); it must
    be exactly the hash of the saved document without `plan_digest`, whatever the count."""
    import hashlib
    import json

    from reconciler.plan import canonical_bytes

    staff = frozenset(f"m{i}@{DOMAIN}" for i in range(added + 1))
    include = tuple(sorted(staff)[:added])
    plan = make_plan(
        desired(line=DesiredChannel(members=listed(*(e.split("@")[0] for e in include)))),
        tenant(staff, line=channel_state(greeting_message="営業\u2028時間")),
        "local:/t.db",
    )
    assert sum(c.target is not None for c in plan.changes) == added
    document = json.loads(json.dumps(plan.to_json()))  # what a saved plan reads back
    saved_digest = document.pop("plan_digest")
    assert saved_digest == plan.digest
    assert plan.digest == hashlib.sha256(canonical_bytes(document)).hexdigest()

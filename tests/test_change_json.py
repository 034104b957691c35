"""A change's canonical JSON, spelled by hand (reconciler.change_json), is exactly what
json.dumps makes of `change.to_json()`: the plan digest and the journal rows depend on it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.actions import Action, Change, Threshold
from reconciler.change_json import change_json, changes_json
from reconciler.model import Because, ChannelName
from reconciler.side_effects import SideEffect

# Text that json escapes (quotes, backslashes, controls), Japanese, and the line breaks the
# plan digest spells escaped.
TEXT = st.text(
    st.sampled_from(["a", '"', "\\", "\n", "\x00", "\x7f", "営", "業", "\u2028", "\x85", "😀"])
    | st.characters(),
    max_size=12,
)
VALUES = st.none() | st.booleans() | TEXT | st.integers() | st.dictionaries(TEXT, TEXT, max_size=2)


def canonical(value: Any, *, allow_nan: bool = True) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan
    )


CHANGES = st.builds(
    Change,
    id=TEXT,
    action=st.sampled_from(list(Action)),
    channel=st.sampled_from(list(ChannelName)),
    target=st.none() | TEXT,
    before=VALUES,
    after=VALUES,
    destructive=st.booleans(),
    execution=st.sampled_from(["local", "manual"]),
    depends_on=st.lists(TEXT, max_size=3).map(tuple),
    side_effects=st.lists(
        st.builds(SideEffect, kind=TEXT, text=TEXT, count=st.none() | st.integers()), max_size=2
    ).map(tuple),
    reason=TEXT,
    threshold=st.none()
    | st.builds(
        Threshold,
        rule=st.sampled_from(["max_member_removals", "max_member_removal_percent"]),
        limit=st.integers(0, 100) | st.floats(0, 100),
        count=st.integers(0, 10**6),
        list_size=st.integers(0, 10**6),
        percent=st.floats(0, 100),
        min_member_removals=st.integers(0, 100),
    ),
    because=st.none()
    | st.builds(
        Because,
        rule=st.sampled_from(["include", "exclude", "not_selected", "setting", "left"]),
        name=st.none() | TEXT,
        line=st.none() | st.integers(1, 10**6),
        via=st.none() | st.sampled_from(["orgunit", "group"]),
    ),
)


@given(CHANGES)
def test_change_json_is_the_canonical_json_of_to_json(change: Change) -> None:
    assert change_json(change) == canonical(change.to_json())
    assert change_json(change, allow_nan=False) == canonical(change.to_json(), allow_nan=False)


@given(CHANGES, st.lists(st.tuples(TEXT, st.none() | TEXT, st.booleans()), max_size=4))
def test_changes_json_of_a_run_is_each_changes_json(first: Change, others: list[Any]) -> None:
    # A member list's run: the same objects in every field but id, target and because (the
    # frame is reused), with a change of another kind between (the frame is spelled again).
    run = [first]
    for id_, target, because in others:
        run.append(
            replace(
                first,
                id=id_,
                target=target,
                because=Because("include", id_, 3) if because else None,
            )
        )
    run.append(replace(first, reason=first.reason + "x"))
    run.append(replace(run[-1], id="y"))
    assert list(changes_json(run)) == [change_json(c) for c in run]
    assert list(changes_json(run, allow_nan=False)) == [
        change_json(c, allow_nan=False) for c in run
    ]
    assert list(changes_json(run)) == [canonical(c.to_json()) for c in run]


def test_changes_json_spells_a_reused_frame_as_json_dumps() -> None:
    # Two changes whose values are equal but not alike in JSON (1 and True) never share a frame.
    one = Change("a", Action.SET_AUTO_GRANT, ChannelName.LINE, None, 1, 0)
    true = replace(one, before=True, after=False)
    texts = list(changes_json([one, true]))
    assert texts == [canonical(one.to_json()), canonical(true.to_json())]

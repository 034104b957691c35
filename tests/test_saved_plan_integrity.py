"""Saved-plan integrity through the real CLI: no edit of PLAN.json makes apply do anything but
what planning the desired document it carries against the tenant does (docs/plan-format.md).

Each edit is tried twice: as a careless operator would (digests left as they were) and as an
attacker who read the code would (digests recomputed). Each refusal proves the tenant unchanged
(`lwr show --format json` and the tenant database dump) and no apply run recorded.
Malformed plans (tests/corpus/plans/) are input errors: exit 1, a message, no traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler import workflow
from reconciler.change_shape import change_ok
from reconciler.cli import run
from reconciler.errors import StalePlan
from reconciler.plan import canonical_bytes
from reconciler.providers import open_provider
from reconciler.render import renderer_for
from reconciler.resources import load_schema
from reconciler.store import StateLocation

CORPUS = Path(__file__).parent / "corpus" / "plans"
HOSTILE = sorted(CORPUS.glob("*.json"))
LWR = str(Path(sys.executable).parent / "lwr")

HEAD = "version: 1\ntenant: example.co.jp\n"
ADD_DAVE = HEAD + (
    "external_messaging:\n  line:\n    members:\n      policy: additive\n"
    "      include: [dave@example.co.jp]\n"
)
LINE_OFF = HEAD + "external_messaging:\n  line:\n    enabled: false\n"
PROTECTED_OFF = HEAD + "safety:\n  protect_channels: [line]\n" + LINE_OFF[len(HEAD) :]
Edit = Callable[[dict[str, Any]], None]


# --- helpers ---------------------------------------------------------------------------------


def tenant_now(capsys: pytest.CaptureFixture[str]) -> Any:
    """The tenant as `lwr show --format json` prints it."""
    capsys.readouterr()
    assert run(["show", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def dump(root: Path) -> list[str]:
    with closing(sqlite3.connect(root / "tenant.db")) as conn:
        return list(conn.iterdump())


def runs(root: Path) -> int:
    state = StateLocation.resolve(None, f"local:{root}/tenant.db")
    if not state.exists:
        return 0
    with closing(state.open()) as store:
        return len(store.runs())


def refused(root: Path, argv: list[str], capsys: pytest.CaptureFixture[str], code: int) -> str:
    """Run `argv`; expect `code`, a clean message, and the tenant and journal untouched."""
    before, db_before, runs_before = tenant_now(capsys), dump(root), runs(root)
    assert run(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Internal error" not in err, err
    assert tenant_now(capsys) == before
    assert dump(root) == db_before and runs(root) == runs_before
    return err


def saved(root: Path, desired: str, name: str = "plan.json") -> Path:
    """`lwr plan FILE --out PLAN.json` of `desired`: the file as lwr wrote it.

    A plan apply refuses whatever its flags (a protected channel) is not saved by `lwr plan`
    (exit 3): it is written as `--out` would have, the file an older lwr or a hand could make.
    """
    (root / "desired.yaml").write_text(desired, encoding="utf-8")
    code = run(["plan", str(root / "desired.yaml"), "--out", str(root / name)])
    if code == 3:
        assert not (root / name).exists()
        with closing(open_provider(f"local:{root}/tenant.db")) as provider:
            plan = workflow.plan_desired(root / "desired.yaml", provider).plan
        (root / name).write_text(renderer_for("json").render(plan), encoding="utf-8")
    else:
        assert code == 0
    return root / name


def recompute(data: dict[str, Any]) -> None:
    """What an attacker who read plan.py does after an edit: make every digest match again."""
    if "desired_document" in data:
        data["desired_digest"] = hashlib.sha256(
            canonical_bytes(data["desired_document"])
        ).hexdigest()
    body = {k: v for k, v in data.items() if k != "plan_digest"}
    data["plan_digest"] = hashlib.sha256(canonical_bytes(body)).hexdigest()


def edited(path: Path, edit: Edit, *, digests: bool) -> Path:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    if digests and "plan_digest" in data and "desired_digest" in data:
        recompute(data)
    out = path.with_name("edited.json")
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def first(**fields: Any) -> Edit:
    return lambda d: d["changes"][0].update(fields)


def append_erin(d: dict[str, Any]) -> None:
    d["changes"].append(
        {
            **d["changes"][0],
            "id": "line/add_member/erin@example.co.jp",
            "target": "erin@example.co.jp",
        }
    )


def drop_digest_and_append(d: dict[str, Any]) -> None:
    del d["plan_digest"]
    append_erin(d)


# The edits issue 11 names: (desired file, edit, apply flags).
EDITS: dict[str, tuple[str, Edit, list[str]]] = {
    "action-grant-all": (ADD_DAVE, first(action="grant_all_members"), []),
    "target-another-member": (ADD_DAVE, first(target="erin@example.co.jp"), []),
    "target-and-id-another-member": (
        ADD_DAVE,
        first(target="erin@example.co.jp", id="line/add_member/erin@example.co.jp"),
        [],
    ),
    "channel": (
        ADD_DAVE,
        first(channel="lineworks", id="lineworks/add_member/dave@example.co.jp"),
        [],
    ),
    "destructive-false": (LINE_OFF, first(destructive=False), []),
    "protect-channels-emptied": (
        PROTECTED_OFF,
        lambda d: d["safety"].update(protect_channels=[]),
        ["--allow-destructive"],
    ),
    "appended-change": (ADD_DAVE, append_erin, []),
    "plan-digest-deleted-and-change-appended": (ADD_DAVE, drop_digest_and_append, []),
}


# --- every edit is refused -------------------------------------------------------------------


@pytest.mark.parametrize("digests", [False, True], ids=["digests-stale", "digests-recomputed"])
@pytest.mark.parametrize("name", list(EDITS))
def test_an_edited_plan_is_refused_and_the_tenant_is_unchanged(
    demo: Path, capsys: pytest.CaptureFixture[str], name: str, digests: bool
) -> None:
    desired, edit, flags = EDITS[name]
    plan = edited(saved(demo, desired), edit, digests=digests)
    malformed = "plan_digest" not in json.loads(plan.read_text(encoding="utf-8"))
    err = refused(
        demo, ["apply", str(plan), "--auto-approve", *flags], capsys, code=1 if malformed else 3
    )
    if malformed:
        assert "missing required key 'plan_digest'" in err
    elif digests:  # only planning again can tell: the digests match the edited content
        assert "the plan was edited or the tenant changed" in err
    else:
        assert "was edited after it was made" in err


@pytest.mark.parametrize("name", [n for n in EDITS if "deleted" not in n])
def test_show_plan_says_apply_would_refuse_an_edited_plan(
    demo: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    desired, edit, _ = EDITS[name]
    plan = edited(saved(demo, desired), edit, digests=True)
    err = refused(
        demo, ["show-plan", str(plan), "--tenant", f"local:{demo}/tenant.db"], capsys, code=3
    )
    assert "apply would accept it" not in err and "the plan was edited" in err


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", "line/add_member/erin@example.co.jp"),
        ("action", "remove_member"),
        ("channel", "lineworks"),
        ("target", "erin@example.co.jp"),
        ("before", True),
        ("after", False),
        ("destructive", True),
        ("execution", "manual"),
        ("depends_on", ["line/enable_channel"]),
        ("side_effects", []),
        ("reason", "trust me"),
        ("phase", 3),
        ("because", {"rule": "orgunit", "name": "営業部", "line": 5}),
        ("because", {"rule": "include", "name": "erin@example.co.jp", "line": 5}),
    ],
)
def test_every_field_of_a_change_is_compared(
    demo: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any
) -> None:
    plan = edited(saved(demo, ADD_DAVE), first(**{field: value}), digests=True)
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=3)
    assert "change 1 (" in err and f": {field} is " in err  # names the change and the field


def test_a_line_edited_in_one_change_of_an_entry_is_refused(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two removals quote one line (the members key): an edit of one no longer matches the other.
    exact = (
        HEAD + "external_messaging:\n  line:\n    members:\n      include: [alice@example.co.jp]\n"
    )
    plan = saved(demo, exact)
    document = json.loads(plan.read_text(encoding="utf-8"))
    assert [c["because"] for c in document["changes"]] == [
        {"rule": "not_selected", "name": None, "line": 5},
        {"rule": "not_selected", "name": None, "line": 5},
    ]

    def move(d: dict[str, Any]) -> None:
        d["changes"][0]["because"]["line"] = 1

    err = refused(
        demo, ["apply", str(edited(plan, move, digests=True)), "--auto-approve"], capsys, 3
    )
    assert "change 2 (" in err and ": because is " in err


@pytest.mark.parametrize(
    "key,value",
    [
        ("state_digest", "0" * 64),
        ("tenant", "other.co.jp"),
        ("warnings", []),
        (
            "safety",
            {
                "max_member_removals": 0,
                "max_member_removal_percent": 0,
                "protect_channels": ["line", "lineworks"],
            },
        ),
        (
            "summary",
            {
                "total": 0,
                "add": 0,
                "change": 0,
                "remove": 0,
                "destructive": 0,
                "manual": 0,
                "by_action": {},
            },
        ),
        ("tenant_uri", "local:/elsewhere/tenant.db"),
    ],
)
def test_every_top_level_field_is_compared(
    demo: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any
) -> None:
    plan = edited(saved(demo, ADD_DAVE), lambda d: d.update({key: value}), digests=True)
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=3)
    assert "refused: " in err


# --- the embedded desired document -----------------------------------------------------------


def test_an_edited_desired_document_is_refused_unless_the_changes_are_what_it_plans(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def erin_instead(d: dict[str, Any]) -> None:
        d["desired_document"]["external_messaging"]["line"]["members"]["include"] = [
            "erin@example.co.jp"
        ]

    plan = edited(saved(demo, ADD_DAVE), erin_instead, digests=True)
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=3)
    assert "line/add_member/erin@example.co.jp" in err  # what the edited document plans


def test_a_consistent_forgery_only_does_what_its_document_plans(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plan edited so that changes and document agree is a plan of that document: it does
    # exactly what planning the document does, and the tenant's own checks still hold.
    honest = json.loads(saved(demo, ADD_DAVE).read_text(encoding="utf-8"))
    other = json.loads(
        saved(demo, ADD_DAVE.replace("dave@", "erin@"), "erin.json").read_text(encoding="utf-8")
    )
    forged = {
        **honest,
        "changes": other["changes"],
        "summary": other["summary"],
        "desired_document": other["desired_document"],
    }
    recompute(forged)
    (demo / "forged.json").write_text(json.dumps(forged), encoding="utf-8")
    assert run(["apply", str(demo / "forged.json"), "--auto-approve"]) == 0
    line = tenant_now(capsys)["channels"]["line"]["members"]
    assert "erin@example.co.jp" in line and "dave@example.co.jp" not in line


@pytest.mark.parametrize(
    "edit,code,words",
    [
        (lambda d: d["desired_document"].update(tenant="other.co.jp"), 3, "other.co.jp"),
        (
            lambda d: d["desired_document"]["external_messaging"]["line"]["members"].update(
                include=["nobody@example.co.jp"]
            ),
            1,
            "not a member",
        ),
        (
            lambda d: d["desired_document"]["external_messaging"]["line"]["members"].update(
                include=["dave@example.co.jp", "DAVE@example.co.jp"]
            ),
            1,
            "duplicate member",
        ),
        (
            lambda d: d["desired_document"]["external_messaging"]["line"].update(
                greeting={"enabled": True, "message": "\x1b[31mred"}
            ),
            1,
            "control characters",
        ),
        (lambda d: d["desired_document"].update(version="1"), 1, "desired_document"),
        (lambda d: d["desired_document"].update(run="rm -rf /"), 1, "unknown key 'run'"),
    ],
)
def test_the_desired_document_goes_through_every_check_a_desired_file_does(
    demo: Path, capsys: pytest.CaptureFixture[str], edit: Edit, code: int, words: str
) -> None:
    plan = edited(saved(demo, ADD_DAVE), edit, digests=True)
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=code)
    assert words in err


def test_text_that_yaml_reads_as_line_breaks_survives_the_round_trip(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "ようこそ\u2028次の行\u2029😀 end"  # YAML's \\L and \\P escapes below
    greeting = HEAD + (
        "external_messaging:\n  line:\n    greeting:\n      enabled: true\n"
        '      message: "ようこそ\\L次の行\\P😀 end"\n'
    )
    plan = saved(demo, greeting)
    assert run(["apply", str(plan), "--auto-approve"]) == 0
    assert tenant_now(capsys)["channels"]["line"]["greeting"]["message"] == message


def test_the_recipe_can_tell_a_plan_made_from_the_merged_file(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # examples/github-actions/lwr.yml compares desired_digest with `lwr plan FILE` of the
    # merged file: equal for the same document however it is written, else different.
    planned = json.loads(saved(demo, ADD_DAVE).read_text(encoding="utf-8"))["desired_digest"]

    def digest_of(text: str) -> str:
        (demo / "merged.yaml").write_text(text, encoding="utf-8")
        capsys.readouterr()
        assert run(["plan", str(demo / "merged.yaml"), "--format", "json"]) == 0
        return str(json.loads(capsys.readouterr().out)["desired_digest"])

    assert digest_of("# reviewed in #42\n" + ADD_DAVE.replace(": ", ":  ")) == planned
    assert digest_of(ADD_DAVE.replace("dave@", "erin@")) != planned


def test_numbers_json_and_yaml_spell_differently_survive_the_round_trip(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # json writes 0.00001 as 1e-05, which YAML 1.1 reads as text.
    safety = (
        HEAD
        + (
            "safety:\n  max_member_removal_percent: 0.00001\n"
            "  max_member_removals: 12345678901234567890\n"
        )
        + ADD_DAVE[len(HEAD) :]
    )
    assert run(["apply", str(saved(demo, safety)), "--auto-approve"]) == 0
    assert "dave@example.co.jp" in tenant_now(capsys)["channels"]["line"]["members"]


# --- what still holds ------------------------------------------------------------------------


def test_an_unedited_plan_applies_once_and_show_plan_agrees(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = saved(demo, ADD_DAVE)
    capsys.readouterr()
    assert run(["show-plan", str(plan), "--tenant", f"local:{demo}/tenant.db"]) == 0
    assert "apply would accept it" in capsys.readouterr().err
    assert run(["apply", str(plan), "--auto-approve"]) == 0
    assert "dave@example.co.jp" in tenant_now(capsys)["channels"]["line"]["members"]
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=3)
    assert "applied to example.co.jp already" in err


def test_a_tenant_change_after_the_check_is_caught_under_the_lock(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the CLI does, with another apply landing between its check and taking the lock.
    plan = workflow.load_saved_plan(saved(demo, ADD_DAVE))
    provider = open_provider(f"local:{demo}/tenant.db")
    try:
        checked = workflow.check_saved_plan(plan, provider)
        assert run(["tenant", "join", "newbie@example.co.jp"]) == 0
        before, db_before = tenant_now(capsys), dump(demo)
        with (
            closing(StateLocation.resolve(None, f"local:{demo}/tenant.db").open()) as store,
            pytest.raises(StalePlan, match="changed since the plan was made"),
        ):
            workflow.apply_plan(
                checked.plan,
                provider,
                store,
                actor="ci",
                saved=plan,
                checked_against=checked.current,
                allow_destructive=False,
            )
    finally:
        provider.close()
    assert tenant_now(capsys) == before and dump(demo) == db_before


# --- malformed plans -------------------------------------------------------------------------


@pytest.mark.parametrize("case", HOSTILE, ids=[p.name for p in HOSTILE])
@pytest.mark.parametrize("command", ["apply", "show-plan"])
def test_a_malformed_plan_is_an_input_error(
    demo: Path, capsys: pytest.CaptureFixture[str], case: Path, command: str
) -> None:
    argv = [
        command,
        str(case),
        *(["--auto-approve"] if command == "apply" else ["--tenant", f"local:{demo}/tenant.db"]),
    ]
    err = refused(demo, argv, capsys, code=1)
    assert str(case) in err and "problem" in err


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["safety"].update(max_member_removal_percent="20"),
        lambda d: d["safety"].update(max_member_removals=[50]),
        lambda d: d.update(warnings=[1, 2]),
        lambda d: d.update(tenant_uri=None),
        lambda d: d["changes"][0].update(target=5),
        lambda d: d["changes"][0].update(reason={"why": 1}),
        lambda d: d["changes"][0].update(side_effects=[{"kind": 1, "text": ["x"]}]),
        lambda d: d["changes"][0].update(depends_on="line/enable_channel"),
        lambda d: d["changes"][0].update(destructive="false"),
        lambda d: d["summary"].update(by_action=[]),
    ],
    ids=[
        "percent-text",
        "removals-list",
        "warnings-numbers",
        "tenant-uri-null",
        "target-number",
        "reason-object",
        "side-effect-types",
        "depends-on-text",
        "destructive-text",
        "summary-list",
    ],
)
def test_wrong_json_types_in_a_real_plan_are_an_input_error(
    demo: Path, capsys: pytest.CaptureFixture[str], edit: Edit
) -> None:
    safety = HEAD + "safety:\n  max_member_removals: 1\n" + ADD_DAVE[len(HEAD) :]
    plan = edited(saved(demo, safety), edit, digests=True)
    for argv in (
        ["apply", str(plan), "--auto-approve", "--allow-destructive"],
        ["show-plan", str(plan)],
    ):
        err = refused(demo, argv, capsys, code=1)
        assert "found:" in err and "lwr plan FILE --out PLAN.json" in err


def test_the_corpus_has_every_malformed_kind_asked_for() -> None:
    names = " ".join(p.name for p in HOSTILE)
    for kind in (
        "wrong_types",
        "missing_plan_digest",
        "truncated",
        "top_level_list",
        "huge_integer",
        "huge_exponent",
        "nan",
        "old_format_1_0",
        "deep_nesting",
    ):
        assert kind in names, kind


def test_an_old_plan_is_refused_with_the_way_out(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(
        demo, ["apply", str(CORPUS / "old_format_1_0.json"), "--auto-approve"], capsys, code=1
    )
    assert "'1.0'" in err and "lwr plan FILE --out PLAN.json" in err


@pytest.mark.parametrize("key", load_schema("plan.schema.json")["required"])
def test_a_plan_missing_any_required_key_is_an_input_error(
    demo: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    plan = edited(saved(demo, ADD_DAVE), lambda d: d.pop(key), digests=True)
    err = refused(demo, ["apply", str(plan), "--auto-approve"], capsys, code=1)
    assert f"missing required key {key!r}" in err or "format_version" in err


# The cases where the process itself matters (recursion depth, the int conversion limit, the
# byte stream and its encoding): every case runs in process above, for both commands.
PROCESS_BOUND = (
    "big_integer_phase",
    "bom",
    "deep_nesting",
    "huge_exponent",
    "huge_integer",
    "nan",
    "not_utf8",
    "truncated",
)


def test_malformed_plans_that_strain_the_parser_fail_cleanly_in_a_real_process(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "NO_COLOR": "1", "LWR_TENANT": f"local:{tmp_path}/tenant.db"}
    subprocess.run([LWR, "tenant", "init", "--demo"], env=env, check=True, capture_output=True)
    cases = [p for p in HOSTILE if p.stem in PROCESS_BOUND]
    assert len(cases) == len(PROCESS_BOUND)
    for case in cases:
        proc = subprocess.run(
            [LWR, "apply", str(case), "--auto-approve"],
            env=env,
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, (case, proc.stderr)
        assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr, case


def test_a_fifo_given_as_saved_plan_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "plan.json")
    env = {**os.environ, "NO_COLOR": "1", "LWR_TENANT": f"local:{tmp_path}/tenant.db"}
    for argv in (
        ["apply", str(tmp_path / "plan.json"), "--auto-approve"],
        ["show-plan", str(tmp_path / "plan.json")],
    ):
        proc = subprocess.run(
            [LWR, *argv], env=env, text=True, capture_output=True, timeout=30, check=False
        )
        assert proc.returncode == 1 and "not a regular file" in proc.stderr, proc.stderr


# --- the fast change check agrees with the schema --------------------------------------------


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    4,
    -1,
    8,
    2**70,
    "",
    "x",
    "line",
    "add_member",
    "local",
    [],
    ["x"],
    [1],
    {},
    {"kind": "k", "text": "t"},
    [{"kind": "k", "text": "t", "count": 2}],
    [{"kind": "k"}],
    [{"kind": "k", "text": "t", "count": -1}],
    [{"kind": "k", "text": "t", "count": True}],
    {"rule": "include", "name": "a@example.co.jp", "line": 3},
    {"rule": "not_selected", "name": None, "line": None},
    {"rule": "nobody", "name": None, "line": 3},
    {"rule": "group", "name": 1, "line": 3},
    {"rule": "group", "name": "g", "line": 0},
    {"rule": "group", "name": "g", "line": True},
    {"rule": "group", "name": "g"},
]


def test_the_fast_change_check_accepts_only_what_the_schema_accepts() -> None:
    schema = load_schema("plan.schema.json")
    validator = Draft202012Validator(schema).evolve(
        schema={**schema["$defs"]["change"], "$defs": schema["$defs"]}
    )
    good = {
        "id": "line/add_member/a@example.co.jp",
        "action": "add_member",
        "channel": "line",
        "target": "a@example.co.jp",
        "before": False,
        "after": True,
        "destructive": False,
        "execution": "local",
        "depends_on": [],
        "side_effects": [],
        "reason": "",
        "phase": 4,
        "because": {"rule": "include", "name": "a@example.co.jp", "line": 9},
    }
    assert change_ok(good) and validator.is_valid(good)
    cases = [{**good, field: value} for field in good for value in VALUES]
    cases += [{k: v for k, v in good.items() if k != field} for field in good]
    cases += [{**good, "extra": 1}, [good], None, "change"]
    for case in cases:
        if change_ok(case):
            assert validator.is_valid(case), case


def test_the_fast_change_check_knows_the_actions_and_channels_the_schema_lists() -> None:
    from reconciler.change_shape import ACTION_NAMES, CHANNEL_NAMES

    defs = load_schema("plan.schema.json")["$defs"]
    assert set(defs["change"]["properties"]["action"]["enum"]) == ACTION_NAMES
    assert set(defs["channel"]["enum"]) == CHANNEL_NAMES


def test_the_edit_found_by_planning_again_is_named_in_japanese(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal names the first differing change and field in the reader's language; the
    values quoted from the file stay as written."""
    plan = edited(saved(demo, ADD_DAVE), first(reason="書き換え"), digests=True)
    err = refused(demo, ["--lang", "ja", "apply", str(plan), "--auto-approve"], capsys, code=3)
    assert (
        '変更 1（"line/add_member/dave@example.co.jp"）: reason が実行計画では "書き換え"、' in err
    )
    assert "in the plan" not in err and "planned now" not in err

"""The plan tells the whole truth, through the real CLI: what apply would refuse whatever its
flags (a protected channel) fails `lwr plan` in every format, and what a flag or a file change
would let through is said with the numbers; `show-plan --tenant` agrees with apply on every
saved plan (docs/gitops.md#what-a-reviewer-sees-when-apply-would-refuse).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from contextlib import closing
from pathlib import Path

import jsonschema
import pytest
from builders import LINE, channel_state, desired, emails, listed, tenant
from test_gitops import DEMO_LIST, HEAD, LINE_OFF, fingerprint, refused, write

from reconciler import workflow
from reconciler.cli import run
from reconciler.model import DesiredChannel, SafetySettings
from reconciler.plan import make_plan
from reconciler.providers import open_provider
from reconciler.render import renderer_for
from reconciler.resources import load_schema

CORPUS = sorted((Path(__file__).parent / "corpus" / "plans").glob("*.json"))
PROTECTED_OFF = LINE_OFF + "safety:\n  protect_channels: [line]\n"
ONLY_ALICE = DEMO_LIST.replace(
    "[alice@example.co.jp, bob@example.co.jp, carol@example.co.jp]", "[alice@example.co.jp]"
)
TWO_REMOVALS = ONLY_ALICE + "safety:\n  max_member_removals: 1\n"
#: Denied by the default policy file-restriction-when-all-members.
ALL_MEMBERS = HEAD + "  lineworks:\n    enabled: true\n    members: all\n"


def made(root: Path, desired: str, name: str) -> Path:
    """The saved plan of `desired` as `lwr plan --out` writes it, also for a plan that `lwr
    plan` refuses to save (a protected channel, a policy deny): what a hand-made or older
    plan file could be, and what apply must refuse all the same."""
    source = write(root / f"{name}.yaml", desired)
    with closing(open_provider(f"local:{root}/tenant.db")) as provider:
        plan = workflow.plan_desired(source, provider).plan
    out = root / f"{name}.json"
    out.write_text(renderer_for("json").render(plan), encoding="utf-8")
    return out


# --- a protected channel fails the plan ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_plan_refuses_turning_off_a_protected_channel_in_every_format(
    demo: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    f = write(demo / "off.yaml", PROTECTED_OFF)
    capsys.readouterr()
    code = run(["plan", f, "--format", fmt, "--detailed-exitcode", "--out", "plan.json"])
    out, err = capsys.readouterr()
    assert code == 3  # was 2: green in the pull request, red at apply
    assert "refused: the plan has destructive changes on a channel listed in " in err
    assert "safety.protect_channels, which --allow-destructive cannot override" in err
    assert "Not saving plan.json: apply would refuse this plan." in err
    assert not (demo / "plan.json").exists()
    # The plan is still shown for review, saying why it is refused.
    if fmt == "json":
        document = json.loads(out)
        jsonschema.validate(document, load_schema("plan.schema.json"))
        assert document["gate"]["verdict"] == "refused"
        (blocker,) = document["gate"]["blockers"]
        assert blocker["channel"] == "line" and blocker["protected"] is True
        assert blocker["flag"] is None  # no flag lets it through
    elif fmt == "markdown":
        assert "> **apply will refuse this plan**: `line` is in `safety.protect_channels`" in out
        assert "apply needs `--allow-destructive`" not in out  # it would not be enough
    else:
        assert "Apply will refuse this plan: line is in safety.protect_channels" in out
        assert "turn channel off" in out


def test_markdown_dir_has_the_refusal_and_apply_refuses_the_same(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(demo / "off.yaml", PROTECTED_OFF)
    assert run(["plan", f, "--markdown-dir", "comment"]) == 3
    part = (demo / "comment" / "part-1.md").read_text(encoding="utf-8")
    assert "**apply will refuse this plan**" in part
    capsys.readouterr()
    err = refused(demo, ["apply", f, "--auto-approve", "--allow-destructive"], capsys)
    assert "safety.protect_channels, which --allow-destructive cannot override" in err


# --- destructive changes: the flag or the file change apply needs, with the numbers -----------


def test_the_plan_names_the_flag_and_the_file_change_with_the_numbers(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(demo / "two.yaml", TWO_REMOVALS)
    capsys.readouterr()
    assert run(["plan", f, "--detailed-exitcode"]) == 2  # a flag lets it through: not refused
    text = capsys.readouterr().out
    assert "Apply needs --allow-destructive: 2 destructive changes:" in text
    assert (
        "  - line: removing 2 members exceeds the safety threshold: 2 of 3 listed (66.7 %) "
        "is more than 1 member (safety.max_member_removals)\n"
        f"    or, without --allow-destructive: set max_member_removals: 2 in the `safety:` "
        f"block of {f}"
    ) in text
    assert run(["plan", f, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "> **2 destructive changes**: apply needs `--allow-destructive`" in md
    assert "set `max_member_removals: 2` in the `safety:` block" in md
    assert run(["plan", f, "--format", "json"]) == 0
    gate = json.loads(capsys.readouterr().out)["gate"]
    assert gate["verdict"] == "needs_allow_destructive"
    (blocker,) = gate["blockers"]
    assert blocker["flag"] == "--allow-destructive" and blocker["changes"] == 2
    # 2 removals are at most min_member_removals (5): the percentage rule does not fire.
    assert blocker["file_change"] == {"max_member_removals": 2}
    assert blocker["threshold"]["count"] == 2 and blocker["threshold"]["list_size"] == 3


def test_the_file_change_the_plan_names_is_enough_for_apply(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(demo / "two.yaml", TWO_REMOVALS)
    assert run(["apply", f, "--auto-approve"]) == 3  # as the plan said
    eased = write(
        demo / "eased.yaml",
        ONLY_ALICE + "safety:\n  max_member_removals: 2\n",
    )
    capsys.readouterr()
    assert run(["plan", eased, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["gate"] == {"verdict": "ok", "blockers": []}
    assert run(["apply", eased, "--auto-approve"]) == 0  # no flag needed any more


def test_turning_a_channel_off_needs_the_flag_and_no_file_change_does(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["plan", write(demo / "off.yaml", LINE_OFF), "--format", "json"]) == 0
    (blocker,) = json.loads(capsys.readouterr().out)["gate"]["blockers"]
    assert blocker["action"] == "disable_channel" and blocker["file_change"] == {}


# --- show-plan --tenant agrees with apply on every saved plan ---------------------------------


def _both(
    demo: Path, plan: Path, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[tuple[int, str], tuple[int, str]]:
    """(exit code, last stderr line) of `show-plan --tenant` and then of `apply` of `plan`."""
    shown = run(["show-plan", str(plan), "--tenant", f"local:{demo}/tenant.db", *flags])
    shown_err = capsys.readouterr().err
    applied = run(["apply", str(plan), "--auto-approve", *flags])
    applied_err = capsys.readouterr().err
    assert "Traceback" not in shown_err + applied_err
    return (shown, _verdict(shown_err)), (applied, _verdict(applied_err))


def _verdict(err: str) -> str:
    """The refusal's first line (or `accepted`), whatever else the command printed."""
    for line in err.splitlines():
        if line.startswith(("refused:", "Error:", "1 problem", "2 problems")):
            return line
    return "accepted"


@pytest.mark.parametrize("case", CORPUS, ids=[p.name for p in CORPUS])
def test_show_plan_tenant_agrees_with_apply_on_the_corpus(
    demo: Path, capsys: pytest.CaptureFixture[str], case: Path
) -> None:
    shown, applied = _both(demo, case, [], capsys)
    assert shown == applied


NEW = {
    "protected-off": (PROTECTED_OFF, ["--allow-destructive"], 3),
    "destructive-without-flag": (LINE_OFF, [], 3),
    "destructive-with-flag": (LINE_OFF, ["--allow-destructive"], 0),
    "removals-without-flag": (TWO_REMOVALS, [], 3),
    "policy-deny": (ALL_MEMBERS, [], 3),
    "in-sync": (HEAD + "  line:\n    enabled: true\n", [], 0),
}


@pytest.mark.parametrize("name", list(NEW))
def test_show_plan_tenant_agrees_with_apply_on_new_plans(
    demo: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    desired, flags, code = NEW[name]
    plan = made(demo, desired, name)
    before = fingerprint(demo / "tenant.db")
    shown, applied = _both(demo, plan, flags, capsys)
    assert shown == applied and shown[0] == code, (shown, applied)
    if code == 3:
        assert fingerprint(demo / "tenant.db") == before


def test_show_plan_tenant_agrees_on_a_replayed_and_a_foreign_plan(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = made(demo, LINE_OFF, "off")
    copy = demo / "copy.json"
    shutil.copy(plan, copy)
    assert run(["apply", str(plan), "--auto-approve", "--allow-destructive"]) == 0
    capsys.readouterr()
    shown, applied = _both(demo, copy, ["--allow-destructive"], capsys)  # applied already
    assert shown == applied and shown[0] == 3
    other = demo / "other"
    other.mkdir()
    assert run(["tenant", "init", "--demo", "--tenant", f"local:{other}/tenant.db"]) == 0
    capsys.readouterr()
    target = f"local:{other}/tenant.db"
    foreign = run(["show-plan", str(copy), "--tenant", target])
    foreign_err = _verdict(capsys.readouterr().err)
    assert run(["apply", str(copy), "--auto-approve", "--tenant", target]) == foreign == 3
    assert _verdict(capsys.readouterr().err) == foreign_err
    assert foreign_err.startswith("refused: the plan was made for ")


def test_a_directory_plan_refuses_a_protected_channel_too(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = demo / "site"
    site.mkdir()
    write(site / "example.yaml", PROTECTED_OFF + f"target: local:{demo}/tenant.db\n")
    capsys.readouterr()
    assert run(["plan", str(site), "--detailed-exitcode"]) == 3  # was 2
    assert "refused" in capsys.readouterr().out


@pytest.mark.parametrize(
    "size,kept,safety",
    [
        (100, 40, SafetySettings()),  # 60 removals: both the count and the percentage fire
        (10, 2, SafetySettings()),  # 8 of 10: the percentage alone
        (30, 20, SafetySettings(max_member_removal_percent=33.3)),  # 33.33… %: rounded up
        (30, 0, SafetySettings(max_member_removals=3, max_member_removal_percent=100.0)),
    ],
)
def test_the_file_change_a_blocker_names_is_exactly_enough(
    size: int, kept: int, safety: SafetySettings
) -> None:
    names = [f"m{i:03}" for i in range(size)]
    have = tenant(emails(*names), line=channel_state(LINE, members=emails(*names)))
    want = dataclasses.replace(
        desired(DesiredChannel(members=listed(*names[:kept]))), safety=safety
    )
    (blocker,) = make_plan(want, have, "local:/t.db").gate.blockers
    assert blocker.file_change and not blocker.protected
    eased = dataclasses.replace(safety, **dict(blocker.file_change))
    assert (
        make_plan(dataclasses.replace(want, safety=eased), have, "local:/t.db").gate.verdict == "ok"
    )
    for key, value in blocker.file_change:  # and no less would do
        less = value - 1 if key == "max_member_removals" else round(value - 0.1, 1)
        tighter = dataclasses.replace(eased, **{key: less})
        assert make_plan(
            dataclasses.replace(want, safety=tighter), have, "local:/t.db"
        ).gate.blockers


def test_a_refused_plan_also_names_what_apply_would_need_the_flag_for(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    on = write(demo / "on.yaml", HEAD + "  lineworks:\n    enabled: true\n")
    assert run(["apply", on, "--auto-approve"]) == 0  # the demo's lineworks is off
    both = write(
        demo / "both.yaml",
        HEAD + "  line:\n    enabled: false\n  lineworks:\n    enabled: false\n"
        "safety:\n  protect_channels: [line]\n",
    )
    capsys.readouterr()
    assert run(["plan", both]) == 3
    out, err = capsys.readouterr()
    for text in (out, err):  # all of it now, not one refusal after the other
        assert "line/disable_channel" in text
        assert (
            "Besides, apply needs --allow-destructive for:\n  - lineworks/disable_channel" in text
        )
    assert run(["plan", both, "--format", "markdown"]) == 3
    md = capsys.readouterr().out
    assert (
        "> Besides, apply needs `--allow-destructive` for:\n> - **lineworks**: turn channel off"
        in md
    )

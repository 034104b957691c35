"""Policies: the policy-file schema, the shipped rules, evaluation on files and plans, the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jsonschema
import pytest
import yaml
from builders import DOMAIN, DesiredChannel, channel_state, desired, tenant

from reconciler.cli import run
from reconciler.desired import parse_desired
from reconciler.errors import InputError, PolicyDenied
from reconciler.model import MembersSpec
from reconciler.plan import make_plan
from reconciler.policy import evaluate
from reconciler.policy_files import default_policy_dir, load_policies, load_policy_file
from reconciler.resources import load_schema

HEAD = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
SHIPPED = [
    "greeting-has-message",
    "file-restriction-when-all-members",
    "review-large-member-additions",
]


def desired_file(text: str, name: str = "team.yaml") -> object:
    return parse_desired(text.encode(), name)


def failed(text: str) -> dict[str, tuple[str, ...]]:
    """{rule id: places} of the shipped rules failing on a desired file."""
    report = evaluate(load_policies(), desired=desired_file(text), plan=None)  # type: ignore[arg-type]
    return {f.rule.id: f.places for f in report.findings}


def write_rules(folder: Path, text: str, name: str = "team.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


# --- the shipped rules -------------------------------------------------------------------------


def test_shipped_rules_follow_the_policy_schema() -> None:
    schema = load_schema("policy.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted(default_policy_dir().glob("*.yaml"))
    assert files
    for file in files:
        jsonschema.validate(yaml.safe_load(file.read_text(encoding="utf-8")), schema)
    assert [r.id for r in load_policies()] == SHIPPED


@pytest.mark.parametrize(
    "greeting",
    ["{enabled: true}", "{enabled: true, message: ''}", '{enabled: true, message: "  \\n "}'],
)
def test_an_enabled_greeting_needs_a_message(greeting: str) -> None:
    places = failed(HEAD + f"  line:\n    greeting: {greeting}\n")
    assert list(places) == ["greeting-has-message"]
    assert places["greeting-has-message"][0].startswith("team.yaml:5:")


@pytest.mark.parametrize(
    "greeting", ["{enabled: true, message: ようこそ}", "{enabled: false}", "{message: ''}"]
)
def test_a_greeting_with_text_or_switched_off_passes(greeting: str) -> None:
    assert failed(HEAD + f"  line:\n    greeting: {greeting}\n") == {}


def test_all_members_needs_file_restriction_on_each_channel() -> None:
    places = failed(
        HEAD + "  line:\n    members: all\n    restrict_file_transfer: false\n"
        "  lineworks:\n    members: all\n"
    )
    where = places["file-restriction-when-all-members"]
    assert where[0].startswith("team.yaml:6:5: external_messaging.line.restrict_file_transfer")
    assert where[1].startswith("team.yaml:7:3: external_messaging.lineworks (")
    assert failed(HEAD + "  lineworks:\n    members: all\n    restrict_file_transfer: true\n") == {}
    assert (
        failed(
            HEAD + "  lineworks:\n    restrict_file_transfer: false\n    members:\n"
            "      include: [alice@example.co.jp]\n"
        )
        == {}
    )


@pytest.mark.parametrize(("adds", "warned"), [(100, False), (101, True)])
def test_more_than_100_member_adds_warn(adds: int, warned: bool) -> None:
    staff = frozenset(f"m{i:03d}@{DOMAIN}" for i in range(150))
    include = frozenset(sorted(staff)[:adds])
    plan = make_plan(
        desired(line=DesiredChannel(members=MembersSpec(False, "exact", include))),
        tenant(staff, line=channel_state()),
        "local:/t.db",
    )
    report = evaluate(load_policies(), desired=None, plan=plan)
    assert [f.rule.id for f in report.warnings] == (
        ["review-large-member-additions"] if warned else []
    )
    assert not report.denied
    report.raise_if_denied()  # a warning never refuses
    assert report.notes == (
        "greeting-has-message: not evaluated, the desired-state file is not at hand",
        "file-restriction-when-all-members: not evaluated, the desired-state file is not at hand",
    )


# --- a team's rules ---------------------------------------------------------------------------

NO_CAROL_REMOVAL = """\
rules:
  - id: keep-carol
    severity: deny
    target: plan
    message: Carol handles complaints on LINE; she stays on the list.
    rule:
      properties:
        changes:
          items:
            not:
              required: [action, target]
              properties:
                action: {const: remove_member}
                target: {const: carol@example.co.jp}
"""


def test_plan_rules_point_at_the_change(tmp_path: Path) -> None:
    rules = load_policy_file(write_rules(tmp_path, NO_CAROL_REMOVAL) / "team.yaml")
    staff = frozenset(f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol"))
    plan = make_plan(
        desired(
            line=DesiredChannel(members=MembersSpec(False, "exact", frozenset({f"alice@{DOMAIN}"})))
        ),
        tenant(staff, line=channel_state(members=staff)),
        "local:/t.db",
    )
    report = evaluate(rules, desired=None, plan=plan)
    (finding,) = report.denied
    assert finding.places[0].startswith("plan: changes[1] (line/remove_member/carol@example.co.jp)")
    assert finding.rule.source == f"{tmp_path}/team.yaml:2"
    with pytest.raises(PolicyDenied) as refused:
        report.raise_if_denied()
    assert refused.value.exit_code == 3
    assert "keep-carol: Carol handles complaints on LINE" in str(refused.value)


def test_a_team_rule_replaces_a_shipped_one_by_id_and_defaults_can_be_dropped(
    tmp_path: Path,
) -> None:
    strict = write_rules(
        tmp_path / "team",
        """\
rules:
  - id: review-large-member-additions
    severity: deny
    target: plan
    message: At most 10 adds per plan here.
    rule:
      properties: {summary: {properties: {by_action: {properties: {add_member: {maximum: 10}}}}}}
""",
    )
    rules = load_policies([strict])
    assert [r.id for r in rules] == SHIPPED
    assert rules[-1].severity == "deny" and rules[-1].message == "At most 10 adds per plan here."
    assert [r.id for r in load_policies([strict], defaults=False)] == [
        "review-large-member-additions"
    ]
    assert load_policies(defaults=False) == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - id: x\n    severity: deny\n    target: desired\n    mesage: typo\n"
            "    rule: {}\n",
            [
                "team.yaml:5:5: rules[0].mesage: unknown key 'mesage'",
                "did you mean 'message'?",
                "missing required key 'message'",
            ],
        ),
        (
            "rules:\n  - id: x\n    severity: block\n    target: desired\n"
            "    message: m\n    rule: {}\n",
            ['team.yaml:3:5: rules[0].severity: "block" is not one of deny, warn'],
        ),
        (
            "rules:\n  - id: x\n    severity: warn\n    target: desired\n    message: m\n"
            "    rule: {type: 5}\n",
            ["team.yaml:6:12: rules[0].rule.type: not a valid JSON Schema"],
        ),
        ("rules: []\n", ["team.yaml:1:1: rules:", "list at least one rule"]),
        ("rules:\n  - id: x\n    id: y\n", ["duplicate key"]),
        ("rules: [\n", ["team.yaml:2:1"]),
        ("# nothing yet\n", ["team.yaml:1:1: <document>: empty policy file: expected rules:"]),
    ],
)
def test_a_broken_policy_file_is_a_located_error(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    folder = write_rules(tmp_path, text)
    with pytest.raises(InputError) as error:
        load_policies([folder])
    message = str(error.value).replace(f"{folder}/", "")
    for part in expected:
        assert part in message


def test_duplicate_ids_across_team_folders_are_an_error(tmp_path: Path) -> None:
    rule = (
        "rules:\n  - id: same\n    severity: warn\n    target: plan\n    message: m\n"
        "    rule: true\n"
    )
    one, two = write_rules(tmp_path / "a", rule), write_rules(tmp_path / "b", rule)
    with pytest.raises(InputError, match=r"duplicate rule id 'same' \(first defined at .*a/team"):
        load_policies([one, two])


def test_an_unresolvable_ref_is_an_input_error(tmp_path: Path) -> None:
    folder = write_rules(
        tmp_path,
        "rules:\n  - id: remote\n    severity: deny\n"
        "    target: plan\n    message: m\n"
        "    rule: {$ref: 'https://example.com/rule.json'}\n",
    )
    plan = make_plan(desired(line=DesiredChannel(enabled=True)), tenant(frozenset()), "local:/t")
    with pytest.raises(InputError, match="cannot be resolved"):
        evaluate(load_policies([folder], defaults=False), desired=None, plan=plan)


def test_a_missing_policy_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder of policy files"):
        load_policies([tmp_path / "nope"])


# --- through the CLI ----------------------------------------------------------------------------


def test_deny_lists_every_failed_rule_and_exits_3(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = demo / "bad.yaml"
    f.write_text(
        HEAD + "  line:\n    greeting: {enabled: true}\n    members:\n"
        "      include: [alice@example.co.jp, bob@example.co.jp]\n"
        "  lineworks:\n    enabled: true\n    members: all\n",
        encoding="utf-8",
    )
    team = write_rules(demo / "policies", NO_CAROL_REMOVAL)
    capsys.readouterr()
    assert run(["plan", str(f), "--policy-dir", str(team)]) == 3
    out, err = capsys.readouterr()
    assert err.startswith("refused: 3 policy rules denied this:")
    for rule in ("greeting-has-message", "file-restriction-when-all-members", "keep-carol"):
        assert f"[deny] {rule}:" in err and f"[deny] {rule}:" in out  # listed, and shown
    assert f"at {f}:5:5: external_messaging.line.greeting" in err
    assert "at plan: changes[" in err and "(line/remove_member/carol@example.co.jp)" in err
    assert run(["plan", str(f), "--policy-dir", str(team), "--no-default-policies"]) == 3
    assert "refused: 1 policy rule denied this" in capsys.readouterr().err


def test_warnings_are_shown_and_leave_the_exit_code_alone(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = write_rules(demo / "policies", NO_CAROL_REMOVAL.replace("deny", "warn"))
    f = demo / "two.yaml"
    f.write_text(
        HEAD + "  line:\n    members:\n      include: [alice@example.co.jp]\n", encoding="utf-8"
    )
    capsys.readouterr()
    assert run(["plan", str(f), "--policy-dir", str(team), "--detailed-exitcode"]) == 2
    assert "Policy [warn] keep-carol" in capsys.readouterr().out
    assert run(["plan", str(f), "--policy-dir", str(team), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "keep-carol" not in out and "Policy [warn] keep-carol" in err  # stdout stays JSON
    assert run(["apply", str(f), "--policy-dir", str(team), "--auto-approve"]) == 0


def test_apply_of_a_saved_plan_checks_desired_rules_on_the_document_it_carries(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = demo / "g.yaml"
    f.write_text(
        HEAD + "  line:\n    greeting: {enabled: true, message: ようこそ}\n", encoding="utf-8"
    )
    assert run(["plan", str(f), "--out", "plan.json"]) == 0
    # A team rule added after the plan was made still applies to the desired state on apply,
    # whether the file is gone or now says something else: the plan's own document decides.
    team = write_rules(
        demo / "policies",
        "rules:\n  - id: no-greeting\n    severity: deny\n"
        "    target: desired\n    message: No greetings here.\n"
        "    rule: {properties: {external_messaging: {properties: {line: "
        "{not: {required: [greeting]}}}}}}\n",
    )
    capsys.readouterr()
    assert run(["apply", "plan.json", "--auto-approve", "--policy-dir", str(team)]) == 3
    assert "no-greeting" in capsys.readouterr().err
    f.write_text(HEAD + "  line:\n    enabled: true\n", encoding="utf-8")
    assert run(["apply", "plan.json", "--auto-approve", "--policy-dir", str(team)]) == 3
    assert "no-greeting" in capsys.readouterr().err
    f.unlink()
    assert run(["apply", "plan.json", "--auto-approve", "--policy-dir", str(team)]) == 3
    assert "no-greeting" in capsys.readouterr().err
    assert run(["apply", "plan.json", "--auto-approve"]) == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"properties": {"changes": {"maxItems": 0}}},
        {"patternProperties": {"^chan": {"maxItems": 0}}},
        {"additionalProperties": {"not": {"type": "array", "minItems": 1}}},
        {"not": {"properties": {"summary": {"properties": {"total": {"const": 1}}}}}},
        {"properties": {"plan_digest": {"maxLength": 0}}},  # sees the real digest, not ''
    ],
)
def test_plan_rules_see_the_changes_however_they_reach_them(rule: object) -> None:
    plan = make_plan(
        desired(line=DesiredChannel(enabled=True)),
        tenant(frozenset(), line=channel_state(enabled=False)),
        "local:/t",
    )
    assert len(plan.changes) == 1
    rules = (dataclasses.replace(load_policies()[2], rule=rule),)  # type: ignore[arg-type]
    report = evaluate(rules, desired=None, plan=plan)
    assert [f.rule.id for f in report.findings] == ["review-large-member-additions"]

"""The desired-state file as users meet it: what loads, and what each mistake says and where.

Bad inputs live in tests/corpus/ (one file per case); big or deep ones are generated here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from reconciler import desired as desired_mod
from reconciler import desired_schema, yamlload, yamlpaths, yamlsafe
from reconciler.desired import check_against_tenant, load_desired, parse_desired
from reconciler.errors import InputError, Problem, UsageError, WrongTenant
from reconciler.model import (
    ChannelName,
    DesiredChannel,
    DesiredState,
    GreetingSpec,
    MembersSpec,
    SafetySettings,
)
from reconciler.resources import load_schema

CORPUS = Path(__file__).parent / "corpus"
LINE, LW = ChannelName.LINE, ChannelName.LINEWORKS
GREETING = (
    "友だち追加ありがとうございます。営業時間は 9:00〜18:00（JST）です。\n"
    "Thank you for adding us. Office hours: 9:00-18:00 JST.\n"
)
DISABLED_HINT = (
    "a channel with enabled: false may carry no other key: its settings and list "
    "cannot be managed while it is off"
)


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        load_desired(path)
    assert caught.value.problems, "an InputError always carries at least one problem"
    return caught.value.problems


def parse_problems(data: bytes, source: str = "mem.yaml") -> list[Problem]:
    with pytest.raises(InputError) as caught:
        parse_desired(data, source)
    return caught.value.problems


# --- valid files ----------------------------------------------------------------------------


def test_valid_file_gives_the_desired_state() -> None:
    path = CORPUS / "japanese_greeting.yaml"
    state = load_desired(path)
    assert state.version == 1
    assert state.tenant == "example.co.jp"
    assert state.source == str(path)
    assert state.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert state.channels == {
        LINE: DesiredChannel(
            enabled=True,
            auto_grant_new_members=False,
            restrict_file_transfer=True,
            greeting=GreetingSpec(enabled=True, message=GREETING),
            members=MembersSpec(
                False, "exact", frozenset({"alice@example.co.jp", "bob@example.co.jp"})
            ),
        ),
        # Keys left out are unmanaged: None, never a default.
        LW: DesiredChannel(enabled=True, members=MembersSpec(True)),
    }
    assert state.safety == SafetySettings()


def test_japanese_greeting_survives_unmangled() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    greeting = state.channels[LINE].greeting
    assert greeting is not None and greeting.message == GREETING


def test_only_version_and_tenant_manages_nothing() -> None:
    state = parse_desired(b"version: 1\ntenant: Example.co.jp\n", "min.yaml")
    assert state.channels == {}
    assert state.tenant == "example.co.jp"  # domains are case-insensitive: kept lower-case


def test_a_channel_left_out_is_absent_and_its_keys_are_none() -> None:
    state = parse_desired(
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    enabled: false\n",
        "off.yaml",
    )
    assert state.channels == {LINE: DesiredChannel(enabled=False)}


def test_bom_and_crlf_files_load_like_the_plain_one() -> None:
    plain = load_desired(CORPUS / "japanese_greeting.yaml")
    for name in ("bom.yaml", "crlf.yaml"):
        state = load_desired(CORPUS / name)
        assert state.channels == plain.channels, name


def test_safety_block_overrides_only_what_it_names() -> None:
    state = load_desired(CORPUS / "safety.yaml")
    assert state.safety == SafetySettings(
        max_member_removals=10, max_member_removal_percent=12.5, protect_channels=frozenset({LW})
    )


def test_policy_defaults_to_exact_and_members_are_lowercased() -> None:
    state = parse_desired(
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n  lineworks:\n"
        b"    members:\n      include: [Carol@EXAMPLE.co.jp]\n",
        "m.yaml",
    )
    assert state.channels[LW].members == MembersSpec(
        False, "exact", frozenset({"carol@example.co.jp"})
    )


def test_exported_state_loads_back() -> None:
    """`lwr export` writes files this loader must accept (round trip: docs/contract.md#commands)."""
    from builders import channel_state, emails, tenant

    from reconciler.export import dump_yaml, export_document

    current = tenant(
        emails("alice", "bob"),
        line=channel_state(
            LINE,
            members=emails("alice"),
            greeting_enabled=True,
            greeting_message="こんにちは\nようこそ",
        ),
        lineworks=channel_state(LW, enabled=False),
    )
    state = parse_desired(dump_yaml(export_document(current)).encode(), "export.yaml")
    line = state.channels[LINE]
    assert line.greeting == GreetingSpec(True, "こんにちは\nようこそ")
    assert line.members == MembersSpec(False, "exact", emails("alice"))
    assert state.channels[LW] == DesiredChannel(enabled=False)


# --- one file per mistake -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "where", "path", "message", "hint"),
    [
        (
            "typo_key.yaml",
            "5:5",
            "external_messaging.line.enabeld",
            "unknown key 'enabeld'",
            "did you mean 'enabled'? valid keys here: enabled, auto_grant_new_members",
        ),
        ("tabs.yaml", "5:1", "", "invalid YAML", "indent with spaces"),
        (
            "duplicate_key.yaml",
            "7:5",
            "external_messaging.line.enabled",
            "duplicate key 'enabled' (first at line 5, column 5)",
            "keep one of them",
        ),
        (
            "alias.yaml",
            "9:14",
            "external_messaging.lineworks.members",
            "anchors and aliases (&name, *name) are not supported: "
            "this repeats the value at line 5",
            "write the value out in full",
        ),
        (
            "empty.yaml",
            "1:1",
            "",
            "empty file: expected a mapping with version, tenant, external_messaging",
            "",
        ),
        (
            "greeting_on_lineworks.yaml",
            "6:5",
            "external_messaging.lineworks.greeting",
            "key 'greeting' is not allowed here",
            "exists on the LINE channel only",
        ),
        (
            "wrong_type.yaml",
            "5:5",
            "external_messaging.line.enabled",
            'expected true or false, got the text "yes"',
            "write true or false",
        ),
        (
            "duplicate_member.yaml",
            "9:11",
            "external_messaging.line.members.include[2]",
            "duplicate member ALICE@example.co.jp (first listed on line 7",
            "case does not matter",
        ),
        ("nul.yaml", "2:22", "", "NUL byte", ""),
        ("binary.bin", "2:118", "", "not UTF-8 text", "save the file as UTF-8"),
        ("shift_jis.yaml", "6:16", "", "not UTF-8 text", "Shift_JIS"),
        (
            "custom_tag.yaml",
            "2:9",
            "tenant",
            "the tag !!python/object/apply:os.system is not allowed",
            "without !tags",
        ),
        (
            "multi_document.yaml",
            "3:1",
            "",
            "expected a single document",
            "one desired state per file",
        ),
        (
            "members_list_instead_of_mapping.yaml",
            "5:5",
            "external_messaging.line.members",
            "expected text or a mapping, got a list",
            "members is either all",
        ),
    ],
)
def test_each_mistake_is_one_located_problem_with_a_hint(
    name: str, where: str, path: str, message: str, hint: str
) -> None:
    (problem,) = problems_of(CORPUS / name)
    text = str(problem)
    assert text.startswith(f"{CORPUS / name}:{where}: "), text
    assert problem.path == path
    assert message in problem.message
    assert hint in problem.hint


def test_disabled_channel_with_other_keys_names_each_key() -> None:
    problems = problems_of(CORPUS / "disabled_with_members.yaml")
    assert [(p.line, p.path) for p in problems] == [
        (6, "external_messaging.line.restrict_file_transfer"),
        (7, "external_messaging.line.members"),
    ]
    assert all(p.hint == DISABLED_HINT for p in problems)


def test_unknown_key_in_a_disabled_channel_is_reported_once_as_unknown() -> None:
    (problem,) = parse_problems(
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        b"  line:\n    enabled: false\n    membrs: all\n"
    )
    assert problem.message == "unknown key 'membrs'"
    assert problem.hint.startswith("did you mean 'members'?")


def test_all_mistakes_of_a_file_come_at_once_in_file_order() -> None:
    problems = problems_of(CORPUS / "three_mistakes.yaml")
    assert [(p.line, p.path) for p in problems] == [
        (6, "external_messaging.line.auto_grant_new_member"),
        (8, "external_messaging.line.members.policy"),
        (12, "external_messaging.lineworks.restrict_file_transfer"),
    ]
    assert "valid values: exact, additive" in problems[1].hint
    assert "3 problems found" in str(InputError(problems))


def test_bad_members_are_each_located_at_their_item() -> None:
    problems = problems_of(CORPUS / "bad_members.yaml")
    assert [(p.line, p.column, p.path) for p in problems] == [
        (8, 11, "external_messaging.line.members.include[1]"),
        (10, 11, "external_messaging.line.members.include[3]"),
        (11, 11, "external_messaging.line.members.include[4]"),
    ]
    assert problems[0].message == '"alice" is not a valid login email'
    assert problems[0].hint == "a member is listed by login email, e.g. alice@example.co.jp"
    assert problems[1].message == "expected text, got the number 42"


def test_a_trailing_newline_does_not_sneak_past_the_email_pattern() -> None:
    # Python's `$` matches before a final newline; the schema's pattern must not.
    (problem,) = parse_problems(
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n"
        b'  line:\n    members:\n      include: ["a@example.co.jp\\n"]\n'
    )
    assert problem.path == "external_messaging.line.members.include[0]"


def test_wrong_version_and_tenant_format() -> None:
    problems = problems_of(CORPUS / "wrong_tenant_format.yaml")
    assert [(p.path, p.message) for p in problems] == [
        ("version", 'expected 1, got the text "1"'),
        ("tenant", '"https://example.co.jp/" is not a valid tenant domain'),
    ]


def test_missing_required_keys_are_named() -> None:
    problems = parse_problems(b"external_messaging:\n  line:\n    members:\n      policy: exact\n")
    assert [p.message for p in problems] == [
        "missing required key 'version'",
        "missing required key 'tenant'",
        "missing one of the keys include, include_orgunits, include_groups",
    ]
    assert problems[2].hint.startswith("add include: a list of login emails, include_orgunits")


def test_crlf_and_bom_keep_positions_right() -> None:
    typo = (CORPUS / "typo_key.yaml").read_bytes()
    for data in (typo.replace(b"\n", b"\r\n"), b"\xef\xbb\xbf" + typo):
        (problem,) = parse_problems(data, "t.yaml")
        assert (problem.line, problem.column) == (5, 5)
    problems = parse_problems(b"\xef\xbb\xbfversio: 1\ntenant: example.co.jp\n")
    assert [(p.line, p.column, p.path) for p in problems] == [(1, 1, ""), (1, 1, "versio")]


def test_alias_bomb_is_refused_fast_without_expanding() -> None:
    start = time.perf_counter()
    problems = problems_of(CORPUS / "alias_bomb.yaml")
    assert time.perf_counter() - start < 2
    assert len(problems) == yamlsafe.MAX_ALIAS_PROBLEMS + 1  # then one summary line
    assert (problems[0].line, problems[0].column, problems[0].path) == (4, 8, "b[0]")
    assert problems[-1].message == "62 more aliases not shown"


def test_nan_is_not_a_percentage() -> None:
    (problem,) = parse_problems(
        b"version: 1\ntenant: example.co.jp\nsafety:\n  max_member_removal_percent: .nan\n"
    )
    assert problem.path == "safety.max_member_removal_percent"
    assert "not a number" in problem.message


def test_other_control_characters_are_located() -> None:
    (problem,) = parse_problems(b"version: 1\ntenant: ex\x01ample.co.jp\n")
    assert (problem.line, problem.column) == (2, 11)
    assert "U+0001" in problem.message
    (problem,) = parse_problems("version: 1\ntenant: 例\x7f\n".encode())
    assert (problem.line, problem.column) == (2, 10)


def test_utf16_is_named() -> None:
    (problem,) = parse_problems("version: 1\n".encode("utf-16"))
    assert problem.message == "the file is UTF-16 text"


def test_a_number_too_long_for_python_is_a_problem_not_a_crash() -> None:
    (problem,) = parse_problems(
        b"version: 1\ntenant: example.co.jp\nsafety:\n  max_member_removals: " + b"9" * 5000 + b"\n"
    )
    assert problem.path == "safety.max_member_removals"


SCALARS_AS_SAFELOADER_READS_THEM = [
    "~",
    "null",
    "NULL",
    "",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "y",
    "n",
    "0x1F",
    "0o17",
    "017",
    "1_000",
    "1:30",
    "-1",
    "+1",
    ".5",
    "1e3",
    "1.0e+3",
    ".inf",
    "-.Inf",
    "abc",
    "user@example.co.jp",
    "0b101",
    "'quoted yes'",
    '"1"',
    "!!str 12",
    "--",
    "=x",
]


def _use_python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load and locate with the pure-Python parser, the fallback when libyaml is missing."""
    python = yamlload.fast_loader(yaml.SafeLoader)
    monkeypatch.setattr(yamlsafe, "LOADER", python)
    monkeypatch.setattr(yamlpaths, "LOADER", python)


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_scalars_resolve_as_safeloader_does(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if loader == "python":
        _use_python_parser(monkeypatch)
    text = "".join(f"k{i}: {v}\n" for i, v in enumerate(SCALARS_AS_SAFELOADER_READS_THEM))
    assert yamlsafe.load_yaml(text.encode(), "s.yaml").data == yaml.safe_load(text)


def test_dates_stay_text() -> None:
    """YAML 1.1 timestamps are not in the core schema: a date-like message is a string."""
    assert yamlsafe.load_yaml(b"m: 2024-04-01\n", "d.yaml").data == {"m": "2024-04-01"}


def test_alias_of_an_anchor_nested_in_an_earlier_item_is_found_where_written() -> None:
    (problem,) = parse_problems(b"version: 1\ntenant: example.co.jp\nl:\n  - [&a x]\n  - *a\n")
    assert (problem.line, problem.column, problem.path) == (5, 5, "l[1]")
    assert "repeats the value at line 4, column 6" in problem.message


# --- huge and deep inputs -------------------------------------------------------------------


def test_a_50_mb_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    line = b"        - user000000@example.co.jp\n"
    big.write_bytes(
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n"
        b"    members:\n      include:\n" + line * (50 * 2**20 // len(line))
    )
    start = time.perf_counter()
    (problem,) = problems_of(big)
    assert time.perf_counter() - start < 0.5  # parsing it would take 10+ s
    assert problem.message.startswith("file too large:")
    assert "LWR_MAX_FILE_BYTES" in problem.hint


def test_the_size_cap_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (CORPUS / "japanese_greeting.yaml").read_bytes()
    monkeypatch.setenv("LWR_MAX_FILE_BYTES", "100")
    (problem,) = parse_problems(data)
    assert problem.message == f"file too large: {len(data):,} bytes, the limit is 100"
    monkeypatch.setenv("LWR_MAX_FILE_BYTES", str(len(data)))
    assert parse_desired(data, "ok.yaml").tenant == "example.co.jp"
    monkeypatch.setenv("LWR_MAX_FILE_BYTES", "lots")
    with pytest.raises(UsageError, match="LWR_MAX_FILE_BYTES"):
        parse_desired(data, "x.yaml")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert problem.message.startswith("cannot read the file")


@pytest.mark.parametrize(
    "data",
    [
        b"version: 1\ntenant: " + b"[" * 100_000,  # libyaml's own limit (1000) answers
        b"version: 1\ntenant: " + b"[" * 70 + b"]" * 70 + b"\n",  # ours (64) answers
        b"version: 1\n" + b"".join(b" " * i + b"a:\n" for i in range(70)),
        b"".join(b" " * i + b"a:\n" for i in range(2000)),
    ],
    ids=["flow-100k", "flow-70", "block-70", "block-2000"],
)
@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_deep_nesting_is_a_clean_error(
    data: bytes, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loader == "python":  # the fallback when libyaml is missing recurses in Python
        _use_python_parser(monkeypatch)
    (problem,) = parse_problems(data, "deep.yaml")
    assert "nesting" in problem.message or "nesting" in problem.hint


def test_python_fallback_reports_like_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    with_libyaml = [problems_of(CORPUS / n) for n in ("typo_key.yaml", "alias.yaml")]
    _use_python_parser(monkeypatch)
    assert [problems_of(CORPUS / n) for n in ("typo_key.yaml", "alias.yaml")] == with_libyaml
    assert load_desired(CORPUS / "japanese_greeting.yaml").channels[LINE].greeting == GreetingSpec(
        True, GREETING
    )


# --- positions ------------------------------------------------------------------------------


def test_locate_maps_paths_to_lines_and_falls_back_to_ancestors() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    assert state.locate is not None
    assert state.locate(("external_messaging", "line", "members", "include", 1)) == (18, 11)
    assert state.locate(("external_messaging", "lineworks")) == (19, 3)
    assert state.locate(("external_messaging", "line", "nope", 3)) == (5, 3)
    assert state.locate(("external_messaging", "line", "members", "include", 99)) == (16, 7)
    assert state.locate(()) == (2, 1)  # the first key, after the comment line


def test_format_path() -> None:
    assert (
        yamlsafe.format_path(("external_messaging", "line", "members", "include", 3))
        == "external_messaging.line.members.include[3]"
    )
    assert yamlsafe.format_path(("a b", 0)) == "['a b'][0]"


# --- against the tenant ---------------------------------------------------------------------


DIRECTORY = frozenset({"alice@example.co.jp", "bob@example.co.jp", "carol@example.co.jp"})


def test_matching_tenant_and_known_members_pass() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    check_against_tenant(state, "EXAMPLE.co.jp", DIRECTORY)  # domains ignore case


def test_wrong_tenant_is_refused_naming_both() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    with pytest.raises(WrongTenant) as caught:
        check_against_tenant(state, "other.co.jp", DIRECTORY)
    text = str(caught.value)
    assert f"{CORPUS / 'japanese_greeting.yaml'}:3:1:" in text
    assert "'example.co.jp'" in text and "'other.co.jp'" in text
    assert caught.value.exit_code == 3


def test_unknown_members_are_located_with_a_suggestion() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    directory = frozenset({"alice@example.co.jp", "bobby@example.co.jp"})
    with pytest.raises(InputError) as caught:
        check_against_tenant(state, "example.co.jp", directory)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (18, 11)
    assert problem.path == "external_messaging.line.members.include[1]"
    assert problem.message == "bob@example.co.jp is not a member of tenant example.co.jp"
    assert problem.hint == "did you mean bobby@example.co.jp? not a member of example.co.jp"


def test_unknown_members_in_a_big_directory_get_no_suggestion() -> None:
    state = load_desired(CORPUS / "japanese_greeting.yaml")
    directory = frozenset(f"user{i}@example.co.jp" for i in range(6000)) | {"alice@example.co.jp"}
    with pytest.raises(InputError) as caught:
        check_against_tenant(state, "example.co.jp", directory)
    (problem,) = caught.value.problems
    assert problem.hint == "not a member of example.co.jp"


def test_unknown_members_of_an_in_memory_state_still_reported() -> None:
    state = DesiredState(
        1,
        "example.co.jp",
        {
            LINE: DesiredChannel(
                members=MembersSpec(False, "exact", frozenset({"zed@example.co.jp"}))
            )
        },
    )
    with pytest.raises(InputError) as caught:
        check_against_tenant(state, "example.co.jp", DIRECTORY)
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (0, "external_messaging.line.members.include")


# --- the schema itself ----------------------------------------------------------------------


def _subschemas(node: Any) -> list[dict[str, Any]]:
    """Every subschema that constrains an instance (`if` conditions only test one)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for keyword, value in node.items():
            if keyword != "if":
                found.extend(_subschemas(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_subschemas(value))
    return found


def test_schema_is_valid_2020_12_with_help_on_every_property() -> None:
    schema = load_schema("desired-state.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://lineworks-reconciler.dev/schemas/desired-state.schema.json"
    objects = [s for s in _subschemas(schema) if "properties" in s or s.get("type") == "object"]
    assert len(objects) >= 8
    for sub in objects:
        assert sub.get("additionalProperties") is False, sub.get("description")  # typos fail
        for name, prop in sub.get("properties", {}).items():
            if prop is not True:  # `true`: "no constraint", in the disabled-channel rule
                assert prop.get("description"), name  # editors show it as hover help


def test_fast_member_check_is_in_use_for_the_shipped_schema() -> None:
    """Without it a 100k-member file validates ~2x slower than it parses."""
    check = desired_schema._item_check()
    assert check is not None and check.channels == ("line", "lineworks")


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yaml")))
def test_fast_and_full_schema_paths_agree(name: str) -> None:
    try:
        doc = yamlsafe.load_yaml((CORPUS / name).read_bytes(), name)
    except InputError:
        return  # never reaches the schema
    fast = desired_schema.schema_problems(doc.data, doc.locate, name, fast=True)
    full = desired_schema.schema_problems(doc.data, doc.locate, name, fast=False)
    assert sorted(fast, key=str) == sorted(full, key=str)


# --- random near-valid documents ------------------------------------------------------------


VALID: dict[str, Any] = {
    "version": 1,
    "tenant": "example.co.jp",
    "external_messaging": {
        "line": {
            "enabled": True,
            "auto_grant_new_members": False,
            "restrict_file_transfer": True,
            "greeting": {"enabled": True, "message": "ようこそ"},
            "members": {"policy": "exact", "include": ["alice@example.co.jp", "bob@example.co.jp"]},
        },
        "lineworks": {"enabled": True, "members": "all"},
    },
    "safety": {
        "max_member_removals": 5,
        "max_member_removal_percent": 10,
        "protect_channels": ["line"],
    },
}

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | TEXT
    | st.sampled_from(
        ["all", "exact", "additive", "line", "lineworks", "alice@example.co.jp", "enabled"]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
KEYS = (
    st.sampled_from(
        [
            "enabled",
            "enabeld",
            "members",
            "include",
            "policy",
            "greeting",
            "message",
            "line",
            "lineworks",
            "safety",
            "tenant",
            "x",
        ]
    )
    | TEXT
)


def _containers(node: Any) -> list[dict[str, Any] | list[Any]]:
    found: list[dict[str, Any] | list[Any]] = []
    if isinstance(node, dict | list):
        found.append(node)
        for value in node.values() if isinstance(node, dict) else node:
            found.extend(_containers(value))
    return found


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(_containers(doc)))
        if isinstance(target, list):
            if target and draw(st.booleans()):
                target[draw(st.integers(0, len(target) - 1))] = draw(VALUES)
            else:
                target.append(draw(VALUES))
            continue
        op = draw(st.sampled_from(["drop", "rename", "replace", "add"]))
        if op == "add" or not target:
            target[draw(KEYS)] = draw(VALUES)
            continue
        key = draw(st.sampled_from(sorted(target)))
        if op == "drop":
            del target[key]
        elif op == "rename":
            target[draw(KEYS)] = target.pop(key)
        else:
            target[key] = draw(VALUES)
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid())
def test_near_valid_documents_give_a_state_or_located_problems(doc: dict[str, Any]) -> None:
    data = yaml.safe_dump(doc, allow_unicode=True).encode()
    try:
        state = parse_desired(data, "fuzz.yaml")
    except InputError as e:
        assert e.problems
        assert all(p.line >= 1 and p.column >= 1 for p in e.problems), e.problems
        return
    assert state.tenant == doc["tenant"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid())
def test_fast_path_agrees_with_full_jsonschema(doc: dict[str, Any]) -> None:
    parsed = yamlsafe.load_yaml(yaml.safe_dump(doc, allow_unicode=True).encode(), "f.yaml")
    fast = desired_schema.schema_problems(parsed.data, parsed.locate, "f.yaml", fast=True)
    full = desired_schema.schema_problems(parsed.data, parsed.locate, "f.yaml", fast=False)
    assert sorted(fast, key=str) == sorted(full, key=str)


PUNCTUATION = st.sampled_from(
    [
        b"&a ",
        b"*a",
        b"\t",
        b": ",
        b"- ",
        b"[",
        b"{",
        b"!!",
        b"\n  ",
        b"'",
        b'"',
        b"#",
        b"<<: ",
        b"? ",
        b"\xef\xbb\xbf",
        b"\x00",
        b"\r",
    ]
)


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray((CORPUS / "japanese_greeting.yaml").read_bytes())
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        chunk = draw(st.binary(max_size=4) | PUNCTUATION)
        if draw(st.booleans()):
            data[at:at] = chunk
        else:
            del data[at : at + len(chunk) + 1]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_bytes() | st.binary(max_size=200))
def test_damaged_bytes_never_raise_anything_but_input_error(data: bytes) -> None:
    try:
        parse_desired(data, "damaged.yaml")
    except InputError as e:
        assert e.problems and str(e)


def test_problem_cap_keeps_output_readable() -> None:
    head = (
        b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    members:\n"
        b"      include:\n"
    )
    data = head + b"".join(
        b"        - not-an-email-%d\n" % i for i in range(desired_mod.MAX_PROBLEMS + 5)
    )
    problems = parse_problems(data)
    assert len(problems) == desired_mod.MAX_PROBLEMS + 1
    assert problems[-1].message == "5 more problems not shown"


def test_json_dump_of_schema_has_no_python_only_regex() -> None:
    """Editors run the patterns as ECMA-262 regexes: no Python-only syntax like \\Z or (?P<."""
    text = json.dumps(load_schema("desired-state.schema.json"))
    for python_only in ("\\\\Z", "(?P<", "\\\\A"):
        assert python_only not in text

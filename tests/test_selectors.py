"""Member selectors (issue 16): org units and groups in the desired file, resolved against the
tenant's org chart, and why each planned change is there (`because`, with its line).

The org charts are built in memory (tests/builders.py `org_chart`); the CLI end to end, on a
local tenant with departments, is tests/test_departments.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from builders import LINE, channel_state, emails, org_chart, tenant

from reconciler import workflow
from reconciler.desired import parse_desired
from reconciler.errors import InputError, UsageError
from reconciler.i18n import Messages
from reconciler.model import Because, DesiredState, TenantState
from reconciler.orgchart import OrgChart
from reconciler.plan import Plan, make_plan
from reconciler.providers.local import LocalTenant
from reconciler.render.markdown import PlanMarkdown
from reconciler.render.text import PlanText
from reconciler.selecting import check_desired
from reconciler.selectors import explain, resolve

STAFF = emails("ceo", "sato", "suzuki", "tanaka", "yamada", "ito", "intern01", "kato", "abe")
CHART = org_chart(
    {
        "営業部": (None, emails("sato")),
        "営業部/東日本": ("営業部", emails("suzuki", "intern01")),
        "営業部/西日本": ("営業部", emails("tanaka")),
        "開発部": (None, emails("yamada", "ito")),
        "開発部/東日本": ("開発部", emails("kato")),
        "総務部": (None, emails("abe")),
    },
    {"partner-support": emails("ito", "abe")},
)

FILE = """\
version: 1
tenant: example.co.jp
external_messaging:
  line:
    enabled: true
    restrict_file_transfer: true
    members:
      policy: exact
      include: [ceo@example.co.jp]
      include_orgunits:
        - 営業部
      include_groups: [partner-support]
      exclude:
        - intern01@example.co.jp
"""


NO_GROUP = FILE.replace("      include_groups: [partner-support]\n", "")


def load(text: str = FILE) -> DesiredState:
    return parse_desired(text.encode(), "desired.yaml")


def planned(
    text: str = FILE, listed: frozenset[str] = frozenset(), chart: OrgChart = CHART, **kw: object
) -> Plan:
    current = tenant(STAFF, line=channel_state(members=listed, **kw))
    return make_plan(resolve(load(text), chart, STAFF), current, "local:t")


def members_of(plan: Plan, current: TenantState | None = None) -> frozenset[str]:
    """The LINE list after the plan, from its changes."""
    have: set[str] = set(current.channels[LINE].members) if current else set()
    for c in plan.changes:
        if c.action.value == "add_member":
            have.add(c.target or "")
        elif c.action.value == "remove_member":
            have.discard(c.target or "")
    return frozenset(have)


# --- the file --------------------------------------------------------------------------------


def test_selectors_are_parsed_with_the_line_of_each_entry() -> None:
    members = load().channels[LINE].members
    assert members is not None and members.uses_selectors
    assert members.include_orgunits == ("営業部",) and members.include_groups == (
        "partner-support",
    )
    assert members.exclude == emails("intern01")
    lines = load().lines
    assert lines.line("line", "orgunit", "営業部") == 11
    assert lines.line("line", "group", "partner-support") == 12
    assert lines.line("line", "exclude", "intern01@example.co.jp") == 14
    assert lines.line("line", "include", "ceo@example.co.jp") == 9
    assert lines.line("line", "not_selected", None) == 7
    assert lines.line("line", "setting", "restrict_file_transfer") == 6


def test_a_list_needs_include_or_a_selector_and_selectors_are_schema_checked() -> None:
    with pytest.raises(InputError) as e:
        load(FILE.replace("include_orgunits:\n        - 営業部", "include_orgunits: 営業部"))
    assert "desired.yaml:10:7: external_messaging.line.members.include_orgunits: expected" in str(
        e.value
    )
    only_groups = FILE.split("      include:")[0] + "      include_groups: [partner-support]\n"
    assert load(only_groups).channels[LINE].members.include == frozenset()  # type: ignore[union-attr]


# --- the effective list ----------------------------------------------------------------------


def test_the_list_is_include_plus_units_with_sub_units_plus_groups_minus_exclude() -> None:
    plan = planned()
    assert members_of(plan) == emails("ceo", "sato", "suzuki", "tanaka", "ito", "abe")


def test_each_member_says_which_entry_lists_them() -> None:
    desired = resolve(load(), CHART, STAFF)
    members = desired.channels[LINE].members
    assert members is not None
    why = {w.email: (w.rule, w.name, w.line) for w in explain(desired, "line", members)}
    assert why["ceo@example.co.jp"] == ("include", "ceo@example.co.jp", 9)
    assert why["suzuki@example.co.jp"] == ("orgunit", "営業部", 11)  # a sub-unit's member
    assert why["abe@example.co.jp"] == ("group", "partner-support", 12)
    assert "intern01@example.co.jp" not in why


def test_only_members_of_the_directory_are_selected() -> None:
    chart = org_chart({"営業部": (None, emails("sato", "gone"))})
    assert "gone@example.co.jp" not in members_of(planned(NO_GROUP, chart=chart))


# --- names the directory does not have -------------------------------------------------------


def test_an_unknown_org_unit_is_located_with_a_did_you_mean() -> None:
    with pytest.raises(InputError) as e:
        resolve(load(FILE.replace("- 営業部", "- 営業")), CHART, STAFF)
    text = str(e.value)
    assert "desired.yaml:11:11: external_messaging.line.members.include_orgunits[0]" in text
    assert "no org unit '営業' in the directory" in text and "did you mean '営業部'?" in text


def test_an_unknown_group_is_located_with_a_did_you_mean() -> None:
    with pytest.raises(InputError) as e:
        resolve(load(FILE.replace("[partner-support]", "[partner-suport]")), CHART, STAFF)
    assert "desired.yaml:12:24: external_messaging.line.members.include_groups[0]" in str(e.value)
    assert "did you mean 'partner-support'?" in str(e.value)


def test_an_ambiguous_unit_name_must_be_written_as_a_path() -> None:
    with pytest.raises(InputError) as e:
        resolve(load(FILE.replace("- 営業部", "- 東日本")), CHART, STAFF)
    assert "2 org units are named '東日本'" in str(e.value)
    assert "write the one you mean as a path: 営業部/東日本, 開発部/東日本" in str(e.value)
    plan = planned(FILE.replace("- 営業部", "- 開発部/東日本"))
    assert "kato@example.co.jp" in members_of(plan)
    assert "suzuki@example.co.jp" not in members_of(plan)


JA = Messages("ja")


def test_names_the_directory_lacks_are_said_in_japanese_at_the_same_place() -> None:
    typo = FILE.replace("- 営業部", "- 営業").replace("[partner-support]", "[partner-suport]")
    with pytest.raises(InputError) as e:
        resolve(load(typo), CHART, STAFF)
    assert e.value.said(JA).splitlines() == [
        "問題が 2 件あります:",
        "desired.yaml:11:11: external_messaging.line.members.include_orgunits[0]: "
        "ディレクトリに組織 '営業' がありません",
        "    ヒント: '営業部' のことですか？ ディレクトリに表示されるとおりの名前を書いてください",
        "desired.yaml:12:24: external_messaging.line.members.include_groups[0]: "
        "ディレクトリにグループ 'partner-suport' がありません",
        "    ヒント: 'partner-support' のことですか？ "
        "ディレクトリに表示されるとおりの名前を書いてください",
    ]
    assert "no group 'partner-suport' in the directory" in str(e.value)  # English as before


def test_an_ambiguous_name_lists_five_paths_and_counts_the_rest_in_both_languages() -> None:
    units: dict[str, tuple[str | None, frozenset[str]]] = {}
    for i in range(7):
        units[f"支社{i}"] = (None, frozenset())
        units[f"支社{i}/東日本"] = (f"支社{i}", frozenset())
    with pytest.raises(InputError) as e:
        resolve(load(NO_GROUP.replace("- 営業部", "- 東日本")), org_chart(units), STAFF)
    shown = ", ".join(f"支社{i}/東日本" for i in range(5))
    assert f"write the one you mean as a path: {shown} and 2 more" in str(e.value)
    assert "7 org units are named '東日本'" in str(e.value)
    said = e.value.said(JA)
    assert "組織名 '東日本' は 7 組織で使われています" in said
    assert f"ヒント: どの組織かをパスで書いてください: {shown} ほか 2 組織" in said


def test_a_top_level_unit_whose_name_repeats_is_written_with_a_leading_slash() -> None:
    chart = org_chart(
        {
            "営業部": (None, emails("sato")),
            "支社": (None, frozenset()),
            "支社/営業部": ("支社", emails("kato")),
        }
    )
    with pytest.raises(InputError, match="/営業部, 支社/営業部"):
        resolve(load(NO_GROUP), chart, STAFF)
    plan = planned(NO_GROUP.replace("- 営業部", "- /営業部"), chart=chart)
    assert "sato@example.co.jp" in members_of(plan)
    assert "kato@example.co.jp" not in members_of(plan)


# --- why each change is there ----------------------------------------------------------------


def test_every_change_says_why_with_the_line_that_causes_it() -> None:
    listed = emails("sato", "yamada", "intern01")  # yamada left the selection, intern01 excluded
    by_target = {c.target: c.because for c in planned(listed=listed).changes}
    assert by_target[None] == Because("setting", "restrict_file_transfer", 6)
    assert by_target["suzuki@example.co.jp"] == Because("orgunit", "営業部", 11)
    assert by_target["ceo@example.co.jp"] == Because("include", "ceo@example.co.jp", 9)
    assert by_target["abe@example.co.jp"] == Because("group", "partner-support", 12)
    assert by_target["yamada@example.co.jp"] == Because("not_selected", None, 7)
    assert by_target["intern01@example.co.jp"] == Because("exclude", "intern01@example.co.jp", 14)


def test_a_plain_list_points_each_change_at_its_own_line() -> None:
    text = FILE.split("      include:")[0] + (
        "      include:\n        - ceo@example.co.jp\n        - Yamada@example.co.jp\n"
    )
    plan = make_plan(load(text), tenant(STAFF, line=channel_state(members=emails("sato"))), "t")
    by_target = {c.target: c.because for c in plan.changes}
    assert by_target["yamada@example.co.jp"] == Because("include", "yamada@example.co.jp", 11)
    assert by_target["sato@example.co.jp"] == Because("not_selected", None, 7)


def test_the_text_and_markdown_plans_say_why() -> None:
    plan = planned(listed=emails("yamada"))
    text = PlanText().render(plan)
    assert (
        "+ line       add member suzuki@example.co.jp (via org unit 営業部, desired.yaml:11)"
        in text
    )
    assert "- line       remove member yamada@example.co.jp (not selected; desired.yaml:7)" in text
    assert "restrict file transfer: off → on (desired.yaml:6)" in text
    markdown = PlanMarkdown().render(plan)
    assert "`suzuki@example.co.jp` _(via org unit 営業部, line 11)_" in markdown


def test_the_japanese_plans_say_why_in_japanese_with_full_width_brackets() -> None:
    plan = planned(listed=emails("yamada"))
    text = PlanText(messages=JA).render(plan)
    assert "利用メンバーに追加 suzuki@example.co.jp（組織 営業部 による、desired.yaml:11）" in text
    assert (
        "利用メンバーに追加 ito@example.co.jp（グループ partner-support による、desired.yaml:12）"
        in text
    )
    assert "利用メンバーに追加 ceo@example.co.jp（include による、desired.yaml:9）" in text
    assert (
        "利用メンバーから削除 yamada@example.co.jp（どの指定にも該当せず、desired.yaml:7）" in text
    )
    assert "via " not in text and "not selected" not in text
    markdown = PlanMarkdown(messages=JA).render(plan)
    assert "`suzuki@example.co.jp` _（組織 営業部 による、11 行目）_" in markdown
    assert "`yamada@example.co.jp` _（どの指定にも該当せず、7 行目）_" in markdown
    assert "_(" not in markdown and "via " not in markdown


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("plan-selectors.ja.txt", lambda plan: PlanText(messages=JA).render(plan)),
        ("plan-selectors.ja.md", lambda plan: PlanMarkdown(messages=JA).render(plan)),
    ],
)
def test_a_plan_with_selectors_in_japanese_golden(name: str, render: Callable[[Plan], str]) -> None:
    """Additions by org unit, group and include, each with why (removals: issue 16's reasons)."""
    from test_render import check_golden

    plan = replace(planned(), created_at="2024-05-01T09:00:00+00:00", tool_version="0.0.0-golden")
    check_golden(name, render(plan))


def test_the_json_plan_carries_why_for_every_change() -> None:
    document = planned(listed=emails("yamada")).to_json()
    assert all("because" in c for c in document["changes"])
    assert document["format_version"] == "2.2"
    add = next(c for c in document["changes"] if c["target"] == "suzuki@example.co.jp")
    assert add["because"] == {"rule": "orgunit", "name": "営業部", "line": 11}


# --- safety ----------------------------------------------------------------------------------


def test_removals_the_directory_causes_count_in_the_thresholds() -> None:
    text = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    members:\n"
    text += "      include_orgunits: [開発部]\n"
    moved = org_chart({"開発部": (None, emails("kato")), "営業部": (None, emails(*"abcdefgh"))})
    listed = emails(*"abcdefgh", "kato")  # eight of nine moved out of 開発部
    plan = make_plan(
        resolve(load(text), moved, listed), tenant(listed, line=channel_state(members=listed)), "t"
    )
    removals = [c for c in plan.changes if c.action.value == "remove_member"]
    assert len(removals) == 8 and all(c.destructive for c in removals)
    assert removals[0].threshold and removals[0].threshold.rule == "max_member_removal_percent"
    assert plan.gate.verdict == "needs_allow_destructive"


def test_a_reorganisation_that_empties_the_list_is_destructive_whatever_the_thresholds() -> None:
    text = "version: 1\ntenant: example.co.jp\nsafety:\n  max_member_removal_percent: 100\n"
    text += "external_messaging:\n  line:\n    members:\n      include_orgunits: [総務部]\n"
    emptied = org_chart({"総務部": (None, frozenset())})  # its three members moved elsewhere
    listed = emails("abe", "ito", "kato")
    plan = make_plan(
        resolve(load(text), emptied, STAFF), tenant(STAFF, line=channel_state(members=listed)), "t"
    )
    assert [c.destructive for c in plan.changes] == [True, True, True]
    (blocker,) = plan.gate.blockers
    assert blocker.threshold and blocker.threshold.rule == "empties_list"
    assert blocker.file_change == ()  # no safety: value lets it through, only the flag
    assert "select nobody now, which would empty the list" in "\n".join(plan.gate.advice())
    with pytest.raises(Exception, match="--allow-destructive"):
        plan.raise_if_unsafe(allow_destructive=False)
    plan.raise_if_unsafe(allow_destructive=True)


def test_emptying_a_short_plain_list_stays_as_the_thresholds_say() -> None:
    text = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    members:\n"
    text += "      include: []\n"
    plan = make_plan(load(text), tenant(STAFF, line=channel_state(members=emails("abe"))), "t")
    assert not plan.changes[0].destructive  # the file says so itself: no directory involved


def test_auto_grant_with_selectors_warns_that_the_selectors_are_the_better_tool() -> None:
    plan = planned(auto_grant_new_members=True)
    (warning,) = plan.warnings
    assert "auto_grant_new_members is on with member selectors" in warning
    assert "turn auto-grant off" in warning
    assert "自動追加を無効にしてください" in PlanText(messages=JA).render(
        planned(auto_grant_new_members=True)
    )


# --- the tenant's org chart, read only when a selector needs it -------------------------------


class Chartless(LocalTenant):
    """A tenant kind that cannot say how its directory is structured."""

    READS_ORG_CHART = False


class Charted(LocalTenant):
    """The local tenant with a fixed org chart, counting how often it is read."""

    READS_ORG_CHART = True
    reads = 0

    def org_chart(self, *, groups: frozenset[str] | None = None) -> OrgChart:
        type(self).reads += 1
        return org_chart({"営業部": (None, emails("dave", "erin"))})


SELECTING = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    members:\n"
SELECTING += "      include: [alice@example.co.jp]\n      include_orgunits: [営業部]\n"


def test_a_plain_list_never_reads_the_org_chart(demo: Path) -> None:
    (demo / "plain.yaml").write_text(SELECTING.replace("      include_orgunits: [営業部]\n", ""))
    Charted.reads = 0
    with Charted.open(demo / "tenant.db") as provider:
        plan = workflow.plan_desired(demo / "plain.yaml", provider).plan
        check_desired(load((demo / "plain.yaml").read_text()), provider)
    assert Charted.reads == 0 and plan.changes


def test_selectors_are_resolved_against_the_tenants_org_chart(demo: Path) -> None:
    (demo / "sales.yaml").write_text(SELECTING, encoding="utf-8")
    Charted.reads = 0
    with Charted.open(demo / "tenant.db") as provider:
        plan = workflow.plan_desired(demo / "sales.yaml", provider).plan
    assert Charted.reads == 1
    adds = {c.target: c.because for c in plan.changes if c.action.value == "add_member"}
    assert adds == {
        "dave@example.co.jp": Because("orgunit", "営業部", 7),
        "erin@example.co.jp": Because("orgunit", "営業部", 7),
    }


def test_a_tenant_that_cannot_read_its_org_chart_says_so(demo: Path) -> None:
    (demo / "sales.yaml").write_text(SELECTING, encoding="utf-8")
    with Chartless.open(demo / "tenant.db") as provider, pytest.raises(UsageError) as e:
        workflow.plan_desired(demo / "sales.yaml", provider)
    assert "a local: tenant" in str(e.value) and "cannot read its org chart" in str(e.value)
    assert "sales.yaml selects members by org unit or group" in str(e.value)
    assert e.value.said(JA) == (
        f"{demo / 'sales.yaml'} は組織またはグループでメンバーを指定していますが、local: テナント"
        f"（{provider.key}）からは組織図を読み取れません。include にメンバーを列挙してください"
    )


def test_the_compact_plan_counts_why() -> None:
    text = PlanText(compact=True).render(planned(listed=emails("yamada")))
    assert "        ← via org unit 営業部, desired.yaml:11 (3 of them)" in text
    assert "        ← via group partner-support, desired.yaml:12 (2 of them)" in text
    assert "        ← not selected; desired.yaml:7\n" in text


def test_a_selector_that_selects_nobody_is_a_warning_with_its_line() -> None:
    emptied = org_chart({"営業部": (None, frozenset())}, {"partner-support": emails("abe")})
    (warning,) = planned(chart=emptied).warnings
    assert warning == (
        "line: include_orgunits 営業部 (desired.yaml:11) selects nobody in the directory; if it "
        "was reorganised, name the units or groups that replace it"
    )
    assert (
        "line: include_orgunits の 営業部（desired.yaml:11）に該当するメンバーがディレクトリに"
        "いません。組織変更があった場合は、後継の組織・グループを指定してください"
    ) in PlanText(messages=JA).render(planned(chart=emptied))


@pytest.mark.parametrize(
    "written",
    [
        "      include:\n        - a@example.co.jp\n        - b@example.co.jp\n"
        "        - c@example.co.jp\n        - d@example.co.jp\n",
        "      include:\n        - a@example.co.jp\n        # b joined in May\n"
        "        - b@example.co.jp\n\n        - c@example.co.jp\n        - d@example.co.jp\n",
        "      include: [a@example.co.jp, b@example.co.jp, c@example.co.jp, d@example.co.jp]\n",
        "      include: [a@example.co.jp,\n        b@example.co.jp, c@example.co.jp,\n"
        "        d@example.co.jp]\n",
    ],
    ids=["one-a-line", "comments-and-blank-lines", "flow", "flow-over-lines"],
)
def test_every_layout_of_a_list_gives_each_entry_its_own_line(written: str) -> None:
    text = "version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n    members:\n"
    desired = load(text + written)
    found = {m: desired.lines.line("line", "include", f"{m}@example.co.jp") for m in "abcd"}
    lines = text.count("\n") + 1 + written.count("\n")
    expected = {
        m: next(i for i, t in enumerate((text + written).splitlines(), 1) if f"{m}@" in t)
        for m in "abcd"
    }
    assert found == expected and all(1 <= n <= lines for n in found.values())


# --- export --selectors ----------------------------------------------------------------------


def test_export_writes_a_selector_for_each_whole_unit_and_plans_no_changes() -> None:
    from reconciler.export import dump_yaml, export_document

    listed = emails("sato", "suzuki", "intern01", "tanaka", "kato", "ceo")  # all of 営業部
    current = tenant(STAFF, line=channel_state(members=listed))
    document = export_document(current, CHART)
    members = document["external_messaging"]["line"]["members"]
    # 開発部/東日本 (kato) is a name two units share: written as its path.
    assert members == {
        "policy": "exact",
        "include": ["ceo@example.co.jp"],
        "include_orgunits": ["営業部", "開発部/東日本"],
    }
    exported = parse_desired(dump_yaml(document).encode(), "exported.yaml")
    assert make_plan(resolve(exported, CHART, STAFF), current, "t").changes == ()

"""Plans that fit: a 10,000-change plan in at most two pull-request comments (golden), compact
text past a size, and `lwr audit` saying what `--limit` left out. Through the real CLI where a
reviewer meets it; the golden is built in memory so it is the same on every machine."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from builders import DOMAIN, LW, DesiredChannel, channel_state, desired, tenant
from markdown_it import MarkdownIt
from test_render import check_golden

from reconciler.cli import run
from reconciler.model import MembersSpec, SafetySettings
from reconciler.plan import Plan, make_plan
from reconciler.providers.local import extra_member
from reconciler.providers.local.demo import demo_directory
from reconciler.render.markdown import PART_LIMIT, PlanMarkdown
from reconciler.render.mdparts import NAMES_BUDGET

GFM = MarkdownIt("gfm-like")


def ten_thousand() -> Plan:
    """5,000 removals (LINE, over the safety threshold, some with open rooms) and 5,000
    additions (LINE WORKS), and one setting: the plan of a reorganisation."""
    staff = [extra_member(i, DOMAIN) for i in range(10_000)]
    current = tenant(
        frozenset(staff),
        line=channel_state(members=frozenset(staff[:5000]), open_rooms={staff[0]: 3, staff[7]: 1}),
        lineworks=channel_state(LW),
    )
    want = desired(
        line=DesiredChannel(restrict_file_transfer=True, members=MembersSpec(False, "exact")),
        lineworks=DesiredChannel(members=MembersSpec(False, "exact", frozenset(staff[5000:]))),
        safety=SafetySettings(),
    )
    plan = make_plan(want, current, "local:/t.db")
    return dataclasses.replace(plan, created_at="2024-05-01T09:00:00+00:00", tool_version="golden")


def test_a_10000_change_plan_fits_in_two_comments_golden() -> None:
    plan = ten_thousand()
    assert len(plan.changes) == 10_001
    parts = PlanMarkdown().render_parts(plan)
    check_golden("plan-10k.md", "".join(parts))
    assert len(parts) <= 2
    assert all(len(p) < PART_LIMIT for p in parts)
    text = "".join(parts)
    # Counts in the summary line, names inside, the rest counted: nothing silently dropped.
    assert "line · remove member: 5,000 members (5,000 destructive)</summary>" in text
    assert "lineworks · add member: 5,000 members</summary>" in text
    codes = (line.split("`")[1] for line in text.splitlines() if line.startswith("- `"))
    shown = Counter(code for code in codes if "@" in code)
    more = sum(
        int(line.split(" and ")[1].split(" more")[0].replace(",", ""))
        for line in text.splitlines()
        if line.startswith("- … and ")
    )
    members = [c for c in plan.changes if c.spec.member_level]
    assert set(shown) <= {c.target for c in members} and max(shown.values()) == 1
    assert len(shown) + more == len(members)
    assert f"`{extra_member(0, DOMAIN)}` — loses external chat" in text  # its own 3 rooms
    for part in parts:  # each comment is a document of its own: balanced, and parsed so
        assert part.count("<details>") == part.count("</details>")
        blocks = [t.content for t in GFM.parse(part) if t.type == "html_block"]
        assert sum(b.count("<details>") for b in blocks) == part.count("<details>")


def test_full_markdown_still_lists_every_change_on_request() -> None:
    plan = ten_thousand()
    parts = PlanMarkdown(compact=False).render_parts(plan)
    everything = "".join(parts)
    assert len(parts) > 2
    for change in plan.changes[:50]:
        if change.spec.member_level:
            assert f"member `{change.target}`" in everything


def test_names_share_one_budget_so_more_kinds_do_not_make_more_parts() -> None:
    text = "".join(PlanMarkdown().render_parts(ten_thousand()))
    names = sum(len(line) + 1 for line in text.splitlines() if line.startswith("- `member"))
    assert names <= NAMES_BUDGET


@pytest.fixture
def big_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A demo tenant of 11,114 members (1,113 on LINE), a desired file listing all of them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    monkeypatch.delenv("LWR_STATE", raising=False)
    assert run(["tenant", "init", "--demo", "--members", "11114"]) == 0
    everyone = "".join(f"        - {e}\n" for e in demo_directory(11_114))
    (tmp_path / "all.yaml").write_text(
        "version: 1\ntenant: example.co.jp\n"
        "external_messaging:\n  line:\n    members:\n      policy: exact\n      include:\n"
        + everyone,
        encoding="utf-8",
    )
    return tmp_path


def test_the_cli_writes_a_10000_change_plan_as_at_most_two_parts_and_compact_text(
    big_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["plan", "all.yaml", "--markdown-dir", "md", "--no-default-policies"]) == 0
    out = capsys.readouterr()
    parts = sorted((big_demo / "md").iterdir())
    assert len(parts) == 2 and "Wrote 2 markdown parts" in out.err
    # Text past 200 changes: counted per kind, first names, "and N more".
    lines = out.out.splitlines()
    assert len(lines) < 20, out.out
    assert "  + line       add member: 10,000 members" in out.out
    assert "… and 9,995 more" in out.out and "Plan: 10000 changes" in out.out
    assert run(["plan", "all.yaml", "--no-default-policies", "--full"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > 20_000
    assert run(["plan", "all.yaml", "--no-default-policies", "--no-compact", "--compact"]) == 0
    assert len(capsys.readouterr().out.splitlines()) < 20  # the last one given wins


def test_a_small_plan_is_listed_in_full_unless_compact_is_asked_for(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
    assert run(["plan", str(example)]) == 0
    assert "remove member carol@example.co.jp" in capsys.readouterr().out
    assert run(["plan", str(example), "--compact"]) == 0
    out = capsys.readouterr().out
    assert "remove member: 1 member" in out and "carol@example.co.jp" in out
    assert "--no-compact lists every change" in out


def test_audit_says_how_many_entries_the_limit_left_out(
    demo_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"
    assert run(["apply", str(example), "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["audit", "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1].startswith("3 of 7 entries shown"), out
    assert run(["audit", "--limit", "0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7  # all, and nothing to say
    assert run(["audit"]) == 0
    assert "shown" not in capsys.readouterr().out  # 7 of the default 50: all of them


def test_hostile_names_inside_the_collapsed_lists_stay_inert() -> None:
    """tests/test_escaping.py's guarantees hold inside <details>: each name is exact inline
    code, nothing links, pings or opens a tag, whether a name is listed or counted."""
    from test_escaping import HOSTILE, one_line, tokens, unpinged

    names = [f"{h}@{DOMAIN}" for h in HOSTILE] + [extra_member(i, DOMAIN) for i in range(20)]
    removed = frozenset(names[::2])
    current = tenant(frozenset(names), line=channel_state(members=removed))
    want = desired(line=DesiredChannel(members=MembersSpec(False, "exact", frozenset(names[1::2]))))
    plan = make_plan(want, current, "local:/t.db")
    text = "".join(PlanMarkdown().render_parts(plan))
    found = list(tokens(text))
    assert not {"link_open", "image", "html_inline"} & {t.type for t in found}, text
    html = [t.content.strip() for t in found if t.type == "html_block"]
    assert html[1::2] == ["</details>"] * 2  # two lists (removals, additions), no other tag
    assert all(b.startswith("<details><summary>") and b.count("<") == 3 for b in html[::2])
    codes = {t.content for t in found if t.type == "code_inline"}
    assert {one_line(n) for n in names} <= codes  # exact (a newline shown as ⏎)
    assert unpinged(text) == []

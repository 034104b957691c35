"""Renderings: golden files for markdown, JSON and text; markdown parts; colour; no secrets.

Golden files live in tests/golden/. After an intended change of the output, regenerate them
with `LWR_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render.py` and review the diff
(`git diff tests/golden`) like any other change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from builders import DOMAIN, LINE, LW, DesiredChannel, GreetingSpec, channel_state, desired, tenant

from reconciler import __version__
from reconciler.actions import Action, Execution
from reconciler.cli import run
from reconciler.desired import parse_desired
from reconciler.drift import DriftReport, drift_report
from reconciler.model import DesiredState, MembersSpec, SafetySettings, TenantState
from reconciler.plan import Plan, make_plan
from reconciler.policy import Finding, PolicyReport, PolicyRule
from reconciler.providers.local import extra_member
from reconciler.render import drift_renderer_for, renderer_for
from reconciler.render.markdown import PART_BREAK, Details, PlanMarkdown, paginate
from reconciler.resources import load_schema

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("LWR_UPDATE_GOLDEN") == "1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"

STAFF = frozenset(f"m{i:02d}@{DOMAIN}" for i in range(30))
LISTED = frozenset(sorted(STAFF)[:10])
WANTED = frozenset(sorted(STAFF)[8:22])  # keeps 2 of the 10, adds 12: 8 removals, 80 %
GREETING = "友だち追加ありがとうございます。\n営業時間は 9:00〜18:00 です。"


def scenario() -> tuple[DesiredState, TenantState]:
    """One plan with every kind of output: destructive, manual, warnings, Japanese, details."""
    current = tenant(
        STAFF,
        line=channel_state(
            members=LISTED,
            greeting_enabled=False,
            greeting_message="",
            open_rooms={sorted(LISTED)[0]: 2, sorted(LISTED)[1]: 1},
        ),
        lineworks=channel_state(
            LW, members=frozenset(sorted(STAFF)[:3]), open_rooms={sorted(STAFF)[0]: 4}
        ),
    )
    want = desired(
        line=DesiredChannel(
            restrict_file_transfer=True,
            auto_grant_new_members=True,
            greeting=GreetingSpec(True, GREETING),
            members=MembersSpec(False, "exact", WANTED),
        ),
        lineworks=DesiredChannel(enabled=False),
        safety=SafetySettings(max_member_removal_percent=25),
    )
    document = {  # what lineworks/company.yaml says, as a saved plan carries it
        "version": 1,
        "tenant": DOMAIN,
        "safety": {"max_member_removal_percent": 25},
        "external_messaging": {
            "line": {
                "restrict_file_transfer": True,
                "auto_grant_new_members": True,
                "greeting": {"enabled": True, "message": GREETING},
                "members": {"policy": "exact", "include": sorted(WANTED)},
            },
            "lineworks": {"enabled": False},
        },
    }
    # The lines each change quotes (`because`), as the file the document was read from has them.
    written = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
    lines = parse_desired(written, "lineworks/company.yaml").lines
    return dataclasses.replace(
        want, source="lineworks/company.yaml", digest="d" * 64, document=document, lines=lines
    ), current


def execution(action: Action) -> Execution:
    return "manual" if action is Action.SET_GREETING else "api"


def golden_plan() -> Plan:
    want, current = scenario()
    plan = make_plan(want, current, "lineworks:12345", execution)
    return dataclasses.replace(
        plan, created_at="2024-05-01T09:00:00+00:00", tool_version="0.0.0-golden"
    )


def golden_drift() -> DriftReport:
    want, current = scenario()
    report = drift_report(want, current, make_plan(want, current, "lineworks:12345", execution))
    return dataclasses.replace(report, checked_at="2024-05-01T09:00:00+00:00")


def golden_policy() -> PolicyReport:
    rule = PolicyRule(
        id="review-large-member-additions",
        severity="warn",
        target="plan",
        message="Have a second person review this list.",
        rule=True,
        source="policies/defaults.yaml:48",
    )
    return PolicyReport(
        (
            Finding(
                rule, ("plan: summary.by_action.add_member (12 is greater than the maximum of 10)",)
            ),
        ),
        evaluated=3,
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}: run LWR_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if intended, regenerate (see module docstring)"
    )


def test_plan_markdown_golden() -> None:
    text = PlanMarkdown(policy=golden_policy()).render(golden_plan())
    check_golden("plan.md", text)
    # What the golden file must show, so a regeneration cannot quietly drop it.
    assert (
        text.index("destructive changes**") < text.index("Policy warning") < text.index("#### line")
    )  # destructive first, right after the summary table
    assert "remove 8 members, over the safety threshold: 8 of 10 listed (80.0 %)" in text
    assert "| line | 12 | 3 | 8 | 8 | 1 |" in text
    assert text.count("<details>") == text.count("</details>") == 2  # one per kind: -, +
    assert "友だち追加ありがとうございます。" in text and "\\u" not in text


def test_plan_json_golden_follows_the_schema() -> None:
    text = renderer_for("json").render(golden_plan())
    check_golden("plan.json", text)
    document = json.loads(text)
    jsonschema.validate(document, load_schema("plan.schema.json"))
    assert Plan.from_json(document).digest == document["plan_digest"]


def test_plan_text_golden() -> None:
    check_golden("plan.txt", renderer_for("text", policy=golden_policy()).render(golden_plan()))


def test_drift_markdown_golden() -> None:
    text = drift_renderer_for("markdown").render(golden_drift())
    check_golden("drift.md", text)
    assert "| enabled | off | on |" in text  # lineworks: desired off, currently on


def test_drift_json_golden_follows_the_schema() -> None:
    text = drift_renderer_for("json", policy=golden_policy()).render(golden_drift())
    text = text.replace(f'"tool_version": "{__version__}"', '"tool_version": "<version>"')
    check_golden("drift.json", text)
    jsonschema.validate(json.loads(text), load_schema("drift.schema.json"))


def test_drift_text_golden() -> None:
    check_golden("drift.txt", drift_renderer_for("text").render(golden_drift()))


# --- markdown parts -----------------------------------------------------------------------------


def big_plan(adds: int) -> Plan:
    staff = frozenset(extra_member(i, DOMAIN) for i in range(adds))
    return make_plan(
        desired(line=DesiredChannel(members=MembersSpec(False, "exact", staff))),
        tenant(staff, line=channel_state()),
        "local:/t.db",
    )


def test_a_long_plan_splits_into_parts_under_the_limit_with_balanced_details() -> None:
    plan = big_plan(3000)
    parts = PlanMarkdown(compact=False).render_parts(plan)  # every change: tests/test_big_plans.py
    assert len(parts) > 1
    for i, part in enumerate(parts, 1):
        assert len(part) < 65_000
        assert part.startswith(f"### lwr plan for `{DOMAIN}` (part {i} of {len(parts)})")
        assert part.count("<details>") == part.count("</details>")
        assert part.index("<details>") < part.index("</details>")  # opened before closed
    assert "(continued)</summary>" in parts[1]
    everything = "".join(parts)
    for change in plan.changes:
        assert everything.count(f"add member `{change.target}`\n") == 1  # code: exact, inert
    assert PlanMarkdown(compact=False).render(plan).count(PART_BREAK) == len(parts) - 1


def test_paginate_never_splits_a_text_block_and_reopens_details() -> None:
    items = tuple(f"- {i:04d}" for i in range(600))
    blocks: list[str | Details] = ["a" * 1500, Details("list", items), "b" * 1500]
    parts = paginate("# T", blocks, limit=3000)
    assert all(len(p) < 3000 for p in parts)
    assert (
        sum(p.count("a" * 1500) for p in parts) == 1
        and sum(p.count("b" * 1500) for p in parts) == 1
    )
    assert [line for p in parts for line in p.splitlines() if line.startswith("- ")] == list(items)
    assert all(p.count("<details>") == p.count("</details>") for p in parts)
    assert paginate("# T", []) == ["# T\n"]


def test_markdown_dir_writes_one_file_per_part_and_drops_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    assert run(["tenant", "init", "--demo"]) == 0
    capsys.readouterr()
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "part-7.md").write_text("old", encoding="utf-8")
    assert run(["plan", str(EXAMPLE), "--markdown-dir", "md", "--format", "json"]) == 0
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == ["part-1.md"]
    part = (tmp_path / "md" / "part-1.md").read_text(encoding="utf-8")
    assert part.startswith("### lwr plan for `example.co.jp`")
    assert json.loads(capsys.readouterr().out)["summary"]["total"] == 7  # stdout unaffected


# --- colour and secrets -------------------------------------------------------------------------


def test_text_is_coloured_only_when_asked() -> None:
    plan = golden_plan()
    assert ANSI.search(renderer_for("text", color=True).render(plan))
    assert not ANSI.search(renderer_for("text", color=False).render(plan))
    assert ANSI.sub("", renderer_for("text", color=True).render(plan)) == renderer_for(
        "text"
    ).render(plan)


def lwr_output(argv: list[str], env: dict[str, str], *, tty: bool) -> str:
    lwr = str(Path(sys.executable).parent / "lwr")
    if not tty:
        return subprocess.run(
            [lwr, *argv], env=env, capture_output=True, text=True, check=False
        ).stdout
    leader, follower = pty.openpty()
    try:
        subprocess.run(
            [lwr, *argv], env=env, stdout=follower, stderr=subprocess.DEVNULL, check=False
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8")
    finally:
        os.close(leader)


def test_colour_on_a_terminal_plain_when_piped_or_no_color(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["LWR_TENANT"] = f"local:{tmp_path}/tenant.db"
    assert run(["tenant", "init", "--demo", "--tenant", env["LWR_TENANT"]]) == 0
    argv = ["plan", str(EXAMPLE)]
    assert ANSI.search(lwr_output(argv, env, tty=True))
    assert not ANSI.search(lwr_output(argv, {**env, "NO_COLOR": "1"}, tty=True))
    piped = lwr_output(argv, env, tty=False)
    assert "Plan: 7 changes" in piped and not ANSI.search(piped)


def test_nothing_secret_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret, pem = "s3cr3t-client-value", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    key = tmp_path / "key.pem"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "LW_CLIENT_ID": "client-id-value",
        "LW_CLIENT_SECRET": secret,
        "LW_SERVICE_ACCOUNT": "svc@example",
        "LW_PRIVATE_KEY_FILE": str(key),
        "LW_DOMAIN_ID": "12345",
        "LWR_TENANT": f"local:{tmp_path}/tenant.db",
    }.items():
        monkeypatch.setenv(name, value)
    assert run(["tenant", "init", "--demo"]) == 0
    outputs = []
    for argv in (
        ["plan", str(EXAMPLE), "--out", "plan.json"],
        ["drift", str(EXAMPLE)],
        ["plan", str(EXAMPLE), "--format", "markdown"],
        ["drift", str(EXAMPLE), "--format", "json"],
        ["show-plan", "plan.json"],
        ["apply", "plan.json", "--auto-approve"],
        ["audit"],
        ["show"],
    ):
        run(argv)
        outputs.append("".join(capsys.readouterr()))
    outputs.append(Path("plan.json").read_text(encoding="utf-8"))
    for text in outputs:
        assert secret not in text and pem not in text and str(key) not in text


def test_json_plan_of_a_real_tenant_follows_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"local:{tmp_path}/tenant.db"
    assert run(["tenant", "init", "--demo", "--tenant", uri]) == 0
    capsys.readouterr()
    for example in sorted(EXAMPLE.parent.glob("*.yaml")):
        assert run(["plan", str(example), "--tenant", uri, "--format", "json"]) == 0
        jsonschema.validate(json.loads(capsys.readouterr().out), load_schema("plan.schema.json"))


def test_destructive_plans_say_so_in_every_format() -> None:
    plan = golden_plan()
    assert "(destructive)" in renderer_for("text").render(plan)
    assert "**(destructive)**" in renderer_for("markdown").render(plan)
    assert json.loads(renderer_for("json").render(plan))["summary"]["destructive"] == 9
    assert LINE in {c.channel for c in plan.destructive}

"""The `lineworks:` provider's errors in Japanese with --lang ja, unchanged in English.

Through the real `lwr` (in process) against the HTTP emulator on 127.0.0.1: each case runs
the same command on a fresh emulator in both languages, and checks the English text, the
Japanese text (with the 「エラー: 」 prefix, no English `Error:` line), and the same exit code.
What the audit log stores stays English whatever the reader's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from builders import SALES_SELECTORS, lwr_output
from emulator import Fault, Limits
from emulator.harness import CHART_SCOPE, POLLED, Harness, emulated

from reconciler.model import ChannelName
from reconciler.providers.local import init_demo

D = "example.co.jp"
LINE = ChannelName.LINE
#: What the console shows before each run: LINE on for alice, bob and carol; LINE WORKS on,
#: nobody listed.
NOW = f"""version: 1
tenant: {D}
external_messaging:
  line:
    enabled: true
    auto_grant_new_members: false
    restrict_file_transfer: false
    greeting: {{enabled: false, message: ""}}
    members: {{policy: exact, include: [alice@{D}, bob@{D}, carol@{D}]}}
  lineworks:
    enabled: true
    restrict_file_transfer: true
    members: {{policy: exact, include: []}}
"""
#: Adds caroline to LINE: her login ID holds "line", which the API never links (name rule).
CAROLINE = NOW.replace(f"carol@{D}]", f"carol@{D}, caroline@{D}]")
#: Adds dave to LINE.
DAVE = NOW.replace(f"carol@{D}]", f"carol@{D}, dave@{D}]")
#: LINE WORKS granted to every member: one bulk request the API accepts (202) and works on.
EVERYONE = NOW.replace("members: {policy: exact, include: []}", "members: all")


@dataclass(frozen=True)
class Case:
    """One way the provider fails, and what each language says about it."""

    file: str  # the desired file applied or planned
    english: tuple[str, ...]  # lines (or parts of them) the English output holds
    japanese: tuple[str, ...]  # and the Japanese one
    command: str = "apply"
    prepare: Callable[[Harness], None] = lambda h: None
    uri: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits | None = None
    departments: bool = False


def _wrong_secret(h: Harness) -> None:
    pass  # the secret is replaced in the environment (Case.env)


def _caroline(h: Harness) -> None:
    h.tenant.add_user(f"caroline@{D}", "Caroline")


def _link_fails(h: Harness) -> None:
    h.emulator.faults.append(Fault("500", "}/link-to-line", times=100_000))


def _cursor_repeats(h: Harness) -> None:
    h.emulator.faults.append(Fault("repeat_cursor", "GET /users", times=100_000))


def _orgunits_refused(h: Harness) -> None:
    h.emulator.faults.append(
        Fault("refuse", "GET /orgunits", times=100_000, status=400, description="bad request")
    )


NAME_RULE = "a link is refused for good (the name rule)"
CASES: dict[str, Case] = {
    "the token is refused (bad credentials)": Case(
        DAVE,
        command="plan",
        env={"LW_CLIENT_SECRET": "definitely-wrong"},
        english=(
            "Error: LINE WORKS refused the service-account token (HTTP 401 invalid_client "
            "unknown client); check LW_CLIENT_ID, LW_CLIENT_SECRET, LW_SERVICE_ACCOUNT, "
            "LW_PRIVATE_KEY_FILE and the app's OAuth scopes",
        ),
        japanese=(
            "エラー: LINE WORKS がサービスアカウントのアクセストークンを発行しませんでした"
            "（HTTP 401 invalid_client unknown client）。LW_CLIENT_ID、LW_CLIENT_SECRET、"
            "LW_SERVICE_ACCOUNT、LW_PRIVATE_KEY_FILE とアプリの OAuth スコープを確認して"
            "ください",
        ),
    ),
    NAME_RULE: Case(
        CAROLINE,
        prepare=_caroline,
        english=(
            "  refused  line/add_member/caroline@example.co.jp: HTTP 400 INVALID_PARAMETER: ",
            "Error: 1 change refused by the tenant, first line/add_member/caroline@example.co.jp"
            ": HTTP 400 INVALID_PARAMETER: ",
            "the API links nobody to LINE whose company name, login ID or name holds an emoji "
            'or the word "line": add caroline@example.co.jp in the console instead (Admin > '
            "Service > Message > External messaging > Chat with LINE users > "
            "Connected-members > Manage)",
        ),
        japanese=(
            "エラー: テナントが変更 1 件を拒否しました（最初は "
            "line/add_member/caroline@example.co.jp: HTTP 400 INVALID_PARAMETER: ",
            "会社名、ログイン ID、氏名に絵文字や「line」という語を含むメンバーは、API では "
            "LINE と連携できません。管理者画面で caroline@example.co.jp を追加してください"
            "（管理者画面 > サービス > トーク > 外部ユーザーとのトーク > "
            "LINEユーザーとのトーク > 利用メンバー > 管理）",
        ),
    ),
    "the retry budget runs out": Case(
        DAVE,
        prepare=_link_fails,
        uri={"max_retry_time": 0.5},
        english=(
            "Error: gave up on POST /users/{userId}/link-to-line after ",
            "(last: HTTP 500; retry budget 0.5 s). LINE WORKS may be unavailable or "
            "rate-limiting hard; the apply is journaled: run it again later",
        ),
        japanese=(
            "エラー: POST /users/{userId}/link-to-line を",
            "（最後の応答: HTTP 500、再試行の上限 0.5 秒）。LINE WORKS が利用できないか、"
            "リクエストを強く制限している可能性があります。適用はジャーナルに記録されています。しばらく"
            "してからもう一度実行してください",
        ),
    ),
    "the directory's cursor repeats": Case(
        DAVE,
        command="plan",
        prepare=_cursor_repeats,
        english=("Error: LINE WORKS returned the same cursor twice for GET /users",),
        japanese=("エラー: LINE WORKS が GET /users に同じカーソルを 2 回返しました",),
    ),
    "the org units cannot be read": Case(
        SALES_SELECTORS,
        command="plan",
        prepare=_orgunits_refused,
        uri={"scope": CHART_SCOPE},
        departments=True,
        english=(
            "Error: the org chart was not read: LINE WORKS refused GET /orgunits (HTTP 400 "
            "INVALID_PARAMETER: bad request); plan again later",
        ),
        japanese=(
            "エラー: 組織図を読み取れませんでした。LINE WORKS が GET /orgunits を拒否しました"
            "（HTTP 400 INVALID_PARAMETER: bad request）。しばらくしてからもう一度 plan を"
            "実行してください",
        ),
    ),
    "the token cannot read org units": Case(
        SALES_SELECTORS,
        command="plan",
        departments=True,
        english=(
            "Error: reading org units and groups needs the OAuth scope `orgunit.read` and "
            "`group.read` (or `directory.read`), and the tenant's scope is 'user'",
        ),
        japanese=(
            "エラー: 組織とグループを読み取るには OAuth スコープ `orgunit.read`、`group.read`"
            "（または `directory.read`）が必要ですが、テナントのスコープは 'user' です。",
        ),
    ),
    "an accepted operation is still running after the poll timeout": Case(
        EVERYONE,
        limits=POLLED,
        uri={"poll_timeout": 0.3},
        english=(
            "Error: POST /users/link-to-works was accepted but is still in progress after "
            "0.3 s; it may still finish. Run `lwr plan` later to see where the tenant is",
            "Warning: lineworks: 1 API request (link-to-works (all members) 1)",
        ),
        japanese=(
            "エラー: POST /users/link-to-works は受け付けられましたが、0.3 秒たっても処理中"
            "です。このあと完了する可能性があります。しばらくしてから `lwr plan` を実行し、"
            "テナントの状態を確認してください",
            # The plan's note names the bulk grant's API the Japanese way.
            "警告: lineworks: API リクエスト 1 件（link-to-works（すべてのメンバー） 1）",
        ),
    ),
}


def _run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: Case,
    lang: str,
) -> tuple[int, str, str]:
    """The case on a fresh emulator: its exit code, what lwr printed, the audit log's JSON."""
    root = tmp_path / lang
    root.mkdir()
    with init_demo(root / "seed.db") as demo:
        state = demo.read()
    with emulated(
        root,
        state,
        attest=False,
        limits=case.limits,
        bulk_pending=30.0,
        departments=case.departments,
    ) as h:
        h.aim(monkeypatch, root, **case.uri)
        (root / "now.yaml").write_text(NOW, encoding="utf-8")
        (root / "want.yaml").write_text(case.file, encoding="utf-8")
        code, out = lwr_output(capsys, "attest", "now.yaml", "--yes")
        assert code == 0, out
        case.prepare(h)
        for name, value in case.env.items():
            monkeypatch.setenv(name, value)
        args = ["--lang", lang, case.command, "want.yaml"]
        code, out = lwr_output(
            capsys, *args, *(["--auto-approve"] if case.command == "apply" else [])
        )
        _, audit = lwr_output(capsys, "--lang", lang, "audit", "--format", "json")
    return code, out, audit


@pytest.mark.parametrize("name", list(CASES))
def test_a_lineworks_error_is_said_in_japanese_with_the_english_exit_code(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    case = CASES[name]
    english_code, english, english_audit = _run(tmp_path, monkeypatch, capsys, case, "en")
    japanese_code, japanese, japanese_audit = _run(tmp_path, monkeypatch, capsys, case, "ja")
    assert english_code != 0 and japanese_code == english_code
    for text in case.english:
        assert text in english, english
    for text in case.japanese:
        assert text in japanese, japanese
    assert "Error:" not in japanese and "エラー: " in japanese
    # Machine output never changes with the language: the audit keeps the English reason.
    if case.file is CAROLINE:
        for audit in (english_audit, japanese_audit):
            reasons = [r.get("error") or r.get("reason") for r in _records(audit)]
            assert any(r and "add caroline@example.co.jp in the console" in r for r in reasons)


def _records(audit: str) -> list[dict[str, str]]:
    parsed = json.loads(audit)
    rows = parsed if isinstance(parsed, list) else parsed.get("records", parsed.get("entries", []))
    return [r for r in rows if isinstance(r, dict)]


def _drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str
) -> tuple[tuple[int, str], tuple[int, str]]:
    """`lwr drift --verify-links` after an admin removed alice from LINE in the console: the
    text report and the JSON one."""
    root = tmp_path / lang
    root.mkdir()
    with emulated(root) as h:
        for who in ("alice", "bob"):
            h.tenant.add_user(f"{who}@{D}")
        h.tenant.channels[LINE].enabled = True
        h.tenant.channels[LINE].linked = {f"alice@{D}", f"bob@{D}"}
        h.aim(monkeypatch, root)
        (root / "d.yaml").write_text(
            f"version: 1\ntenant: {D}\nexternal_messaging:\n  line:\n    enabled: true\n"
            f"    members: {{policy: exact, include: [alice@{D}, bob@{D}]}}\n",
            encoding="utf-8",
        )
        assert lwr_output(capsys, "attest", "d.yaml", "--yes")[0] == 0
        with h.tenant.lock:
            h.tenant.channels[LINE].linked.discard(f"alice@{D}")
        args = ["--lang", lang, "drift", "d.yaml", "--verify-links"]
        return lwr_output(capsys, *args), lwr_output(capsys, *args, "--format", "json")


def test_a_contradicted_attested_member_is_warned_in_japanese_and_json_stays_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (en_code, english), (en_json_code, en_json) = _drift(tmp_path, monkeypatch, capsys, "en")
    (ja_code, japanese), (ja_json_code, ja_json) = _drift(tmp_path, monkeypatch, capsys, "ja")
    assert en_code == ja_code == en_json_code == ja_json_code == 2
    assert (
        f"Warning: lineworks: alice@{D} is on lwr's attested line list, but LINE WORKS says "
        "they have no external permission (GET /users/{userId}/link-url answered 403 FORBIDDEN)"
        in english
    ), english
    assert (
        f"警告: lineworks: alice@{D} は lwr に記録された確認済みの line の利用メンバーにいますが"
        "、LINE WORKS によると連携機能の利用権限がありません（GET /users/{userId}/link-url の"
        "応答: 403 FORBIDDEN）" in japanese
    ), japanese
    assert "管理者画面 > サービス > トーク > 外部ユーザーとのトーク を確認してから" in japanese
    assert "no external permission" not in japanese
    warnings = [json.loads(out)["warnings"] for out in (en_json, ja_json)]
    assert warnings[0] == warnings[1]
    assert any("is on lwr's attested line list" in w for w in warnings[1])


def test_the_failure_report_line_of_a_refused_change_is_japanese(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, japanese, _ = _run(tmp_path, monkeypatch, capsys, CASES[NAME_RULE], "ja")
    lines = japanese.splitlines()
    (at,) = [i for i, x in enumerate(lines) if x.startswith("  拒否    line/add_member/")]
    assert "API では LINE と連携できません" in lines[at] and "the API links nobody" not in lines[at]
    # What to do next names the console's Japanese path and button.
    assert lines[at + 1].startswith("    対応: 管理者画面での手動作業になりました: 管理者画面 > ")
    assert "caroline@example.co.jp を追加" in lines[at + 1] and "[保存]" in lines[at + 1]

"""The audit log's integrity through `lwr audit`: a missing store, a head kept outside the
store (`lwr audit head`, `--verify --head`), and entries chained with LWR_AUDIT_KEY.

Every test runs on both backends (`state_uri`); the log is tampered with behind lwr's back
through a plain connection (test_store.raw), as someone with write access to the database.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from test_store import TENANT, raw, record, split_schema

from reconciler.audit import stored_record
from reconciler.cli import run
from reconciler.errors import UsageError
from reconciler.store import open_store
from reconciler.store.base import GENESIS_HASH, chain_hash, row_hash

KEY = "k3y-" + secrets.token_hex(16)  # what LWR_AUDIT_KEY holds in these tests


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without a key in its environment, whatever the developer's shell has."""
    monkeypatch.delenv("LWR_AUDIT_KEY", raising=False)
    monkeypatch.delenv("LWR_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("LWR_STATE", raising=False)


def lwr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `lwr ARGS`; (exit code, stdout, stderr)."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def append(state_uri: str, first: int, last: int) -> None:
    """Audit entries first..last, as applies would write them (with the environment's key)."""
    with closing(open_store(state_uri, TENANT)) as store:
        store.append_audit([record(n) for n in range(first, last + 1)])


def head(capsys: pytest.CaptureFixture[str], state_uri: str) -> str:
    code, out, err = lwr(capsys, "audit", "head", "--state", state_uri)
    assert code == 0, err
    return out.strip()


def rewrite_chain(
    state_uri: str, *, actor: str = "mallory", algorithm: str | None = "sha256"
) -> None:
    """What someone with write access but no key can do: change entry 2's actor, recompute
    every hash after it with sha256, and move the store's head to match.

    `algorithm`: the marker written on every rewritten entry (None: leave it as it was).
    """
    with raw(state_uri, tamper=True) as conn:
        rows = conn.execute(
            "SELECT seq, at, tenant_key, domain, run_id, actor, change_id, "
            "action, channel, target, before, after, result, error "
            "FROM audit ORDER BY seq"
        ).fetchall()
        prev = GENESIS_HASH
        for row in rows:
            rec = stored_record(row)
            if row[0] == 2:
                rec = replace(rec, actor=actor)
            digest = row_hash(prev, row[0], row[1], rec, row[10], row[11])
            conn.execute(
                "UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (rec.actor, prev, digest, row[0]),
            )
            if algorithm is not None:
                conn.execute("UPDATE audit SET hash_alg = ? WHERE seq = ?", (algorithm, row[0]))
            prev = digest
        conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (len(rows), prev))


# -- a store that does not exist ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["audit", "--verify"], ["audit"], ["audit", "head"]])
def test_audit_of_a_mistyped_sqlite_state_is_an_error_and_creates_nothing(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "stat" / "state.db"
    code, out, err = lwr(
        capsys, *argv, "--state", f"local:{typo}", "--tenant", f"local:{tmp_path}/tenant.db"
    )
    assert code == 1, out
    assert f"no state store at {typo}" in err and "Traceback" not in err
    assert "OK" not in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["audit", "--verify"], ["audit"], ["audit", "head"]])
def test_audit_with_no_default_state_is_an_error_and_creates_nothing(
    tmp_path: Path,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tenant.db").write_bytes(b"")
    code, _, err = lwr(capsys, *argv, "--tenant", f"local:{tmp_path}/tenant.db")
    assert code == 1 and f"no state store at {tmp_path}/state.db" in err
    assert [p.name for p in tmp_path.iterdir()] == ["tenant.db"]


@pytest.mark.parametrize("argv", [["audit", "--verify"], ["audit"], ["audit", "head"]])
def test_audit_of_an_unmigrated_postgresql_state_is_an_error_and_creates_nothing(
    postgres_url: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    schema = f"t_{secrets.token_hex(6)}"
    code, out, err = lwr(capsys, *argv, "--state", f"{postgres_url}?schema={schema}")
    assert code == 1 and "OK" not in out
    assert "does not exist yet" in err and "lwr state migrate" in err
    import psycopg

    with psycopg.connect(split_schema(postgres_url)[0]) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    assert found == (0,)


# -- a head kept outside the store ------------------------------------------------------------


def test_audit_head_prints_seq_and_hash_for_a_pipeline_to_keep(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 5)
    seq, digest = head(capsys, state_uri).split(" ")
    with closing(open_store(state_uri, TENANT)) as store:
        newest = store.audit_entries(limit=1)[0]
    assert (int(seq), digest) == (5, newest.hash)
    code, out, _ = lwr(capsys, "audit", "head", "--state", state_uri, "--format", "json")
    assert code == 0 and json.loads(out) == {"seq": 5, "hash": newest.hash}
    # The options of `lwr audit` given before `head` are not silently ignored.
    code, out, _ = lwr(capsys, "audit", "--state", state_uri, "--format", "json", "head")
    assert code == 0 and json.loads(out) == {"seq": 5, "hash": newest.hash}
    # What it prints is what --head takes.
    code, out, _ = lwr(
        capsys, "audit", "--verify", "--state", state_uri, "--head", f"{seq} {digest}"
    )
    assert code == 0 and "Nothing lost or changed up to the kept head (entry 5)" in out


def test_an_empty_log_has_the_genesis_head(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 0)  # creates the store, appends nothing
    assert head(capsys, state_uri) == f"0 {GENESIS_HASH}"
    code, out, _ = lwr(
        capsys, "audit", "--verify", "--state", state_uri, "--head", f"0:{GENESIS_HASH}"
    )
    assert code == 0 and "0 entries" in out


def test_deleting_the_newest_entries_and_rewinding_the_head_fails_against_the_kept_head(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 5)
    kept = head(capsys, state_uri)
    with raw(state_uri, tamper=True) as conn:
        three = conn.execute("SELECT hash FROM audit WHERE seq = 3").fetchone()[0]
        conn.execute("DELETE FROM audit WHERE seq > 3")
        conn.execute("UPDATE audit_head SET seq = 3, hash = ?", (three,))
    # The chain alone cannot tell; it says so.
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 0 and "3 entries, hash chain intact" in out
    assert (
        "truncation of the newest entries is detectable only against a head kept "
        "elsewhere: `lwr audit --verify --head SEQ:HASH`" in out
    )
    seq, digest = kept.split(" ")
    code, out, err = lwr(
        capsys, "audit", "--verify", "--state", state_uri, "--head", f"{seq}:{digest}"
    )
    assert code == 1 and "OK" not in out
    assert "the log ends at seq 3 but the anchor says 5 existed" in err


def test_an_emptied_log_fails_against_the_kept_head(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 4)
    kept = head(capsys, state_uri)
    with raw(state_uri, tamper=True) as conn:
        conn.execute("DELETE FROM audit")
        conn.execute("UPDATE audit_head SET seq = 0, hash = ?", (GENESIS_HASH,))
    assert lwr(capsys, "audit", "--verify", "--state", state_uri)[0] == 0
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri, "--head", kept)
    assert code == 1 and "the log ends at seq 0 but the anchor says 4 existed" in err


def test_a_consistent_rewrite_passes_the_chain_but_not_the_kept_head(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 5)
    kept = head(capsys, state_uri)
    append(state_uri, 6, 7)  # written after the head was kept: the anchor is a prefix
    assert lwr(capsys, "audit", "--verify", "--state", state_uri, "--head", kept)[0] == 0
    rewrite_chain(state_uri)
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 0 and "7 entries, hash chain intact" in out  # undetectable without more
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri, "--head", kept)
    assert code == 1 and "entry 5's hash differs from the anchor" in err


@pytest.mark.parametrize(
    "anchor", ["5", "5:xyz", "-1:" + GENESIS_HASH, "x:" + GENESIS_HASH, "5:" + GENESIS_HASH + "0"]
)
def test_a_malformed_head_is_a_usage_error(
    state_uri: str, anchor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 1)
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri, "--head", anchor)
    assert code == 1 and "--head" in err and "SEQ:HASH" in err and "Traceback" not in err


def test_head_without_verify_is_a_usage_error(
    state_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(state_uri, 1, 1)
    code, out, err = lwr(capsys, "audit", "--state", state_uri, "--head", f"0:{GENESIS_HASH}")
    assert code == 1 and "--head is checked by --verify" in err and out == ""


# -- entries chained with a key ---------------------------------------------------------------


def test_a_keyed_log_verifies_with_its_key(
    state_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(state_uri, 1, 3)
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 0 and "3 entries, hash chain intact" in out and "3 keyed" in out
    code, out, _ = lwr(
        capsys, "audit", "--format", "json", "--state", state_uri, "--tenant", TENANT
    )
    assert code == 0 and {e["hash_alg"] for e in json.loads(out)} == {"hmac-sha256"}


def test_an_empty_key_is_no_key(
    state_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI secret that does not exist arrives as an empty variable."""
    monkeypatch.setenv("LWR_AUDIT_KEY", "")
    append(state_uri, 1, 2)
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 0 and "2 entries, hash chain intact." in out and "keyed" not in out


@pytest.mark.parametrize(
    ("marked", "reported"),
    [
        ("sha256", "4 entries are not keyed (seq 1 to 4) although LWR_AUDIT_KEY is set"),
        (None, "entry 1 was modified (its content does not match its MAC)"),
    ],
)
def test_a_consistent_rewrite_of_a_keyed_log_fails_with_the_key(
    state_uri: str,
    marked: str | None,
    reported: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the key, a rewrite can only make plain sha256 entries: marked as such (a
    downgrade) or still marked keyed (then their MAC cannot match)."""
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(state_uri, 1, 4)
    rewrite_chain(state_uri, algorithm=marked)
    code, out, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "OK" not in out
    assert reported in err


def test_a_rewrite_with_another_key_fails(
    state_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_AUDIT_KEY", "another-" + KEY)
    append(state_uri, 1, 2)
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "entry 1 was modified (its content does not match its MAC" in err


def test_a_keyed_log_verified_without_the_key_is_not_ok(
    state_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    append(state_uri, 1, 2)
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(state_uri, 3, 5)
    monkeypatch.delenv("LWR_AUDIT_KEY")
    code, out, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "OK" not in out
    assert "3 entries are keyed: set LWR_AUDIT_KEY (or LWR_AUDIT_KEY_FILE) to verify them" in err


def test_entries_from_before_the_key_are_vouched_for_by_the_head_kept_then(
    state_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    append(state_uri, 1, 2)
    kept = head(capsys, state_uri)
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(state_uri, 3, 4)
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "2 entries are not keyed (seq 1 to 2)" in err and "--head" in err
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri, "--head", kept)
    assert code == 0 and "4 entries, hash chain intact" in out


def test_a_key_file_is_read_as_any_input_named_by_the_user(
    state_uri: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key file is opened like a desired file (files.open_input): a FIFO is refused at
    once, named as what it is, and a missing file gets the system's reason."""
    append(state_uri, 1, 1)
    fifo = tmp_path / "audit.key"
    os.mkfifo(fifo, 0o600)
    monkeypatch.setenv("LWR_AUDIT_KEY_FILE", str(fifo))
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and f"the audit key file {fifo}: it is a FIFO (named pipe)" in err
    monkeypatch.setenv("LWR_AUDIT_KEY_FILE", str(tmp_path / "missing.key"))
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "missing.key: No such file or directory" in err


def test_the_key_from_a_private_file(
    state_uri: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o644)
    monkeypatch.setenv("LWR_AUDIT_KEY_FILE", str(key_file))
    with pytest.raises(UsageError, match="chmod 600"):  # an apply stops before the tenant
        append(state_uri, 1, 1)
    code, _, err = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 1 and "chmod 600" in err and str(key_file) in err and KEY not in err
    key_file.chmod(0o600)
    append(state_uri, 1, 2)
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", state_uri)
    assert code == 0 and "2 entries, hash chain intact (2 keyed" in out
    monkeypatch.delenv("LWR_AUDIT_KEY_FILE")
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)  # the same key, given directly
    assert lwr(capsys, "audit", "--verify", "--state", state_uri)[0] == 0


def test_the_key_never_appears_in_any_output(
    state_uri: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(state_uri, 1, 3)
    outputs = []
    for argv in (
        ["audit", "--verify"],
        ["audit", "head"],
        ["audit", "head", "--format", "json"],
        ["audit", "--tenant", TENANT],
        ["audit", "--format", "json", "--tenant", TENANT],
        ["audit", "--verify", "--head", "1:" + "0" * 64],
    ):
        outputs.append(lwr(capsys, *argv, "--state", state_uri))
    monkeypatch.setenv("LWR_AUDIT_KEY", "sh0rtk3y")  # refused: too short
    outputs.append(lwr(capsys, "audit", "--verify", "--state", state_uri))
    assert outputs[-1][0] == 1 and "LWR_AUDIT_KEY" in outputs[-1][2]
    monkeypatch.setenv("LWR_AUDIT_KEY_FILE", str(tmp_path))  # both set: refused
    outputs.append(lwr(capsys, "audit", "--verify", "--state", state_uri))
    assert outputs[-1][0] == 1
    for _, out, err in outputs:
        assert KEY not in out + err and "sh0rtk3y" not in out + err


V2_COLUMNS = (
    "seq, at, tenant_key, domain, run_id, actor, change_id, action, channel, target, "
    "before, after, result, error, prev_hash, hash"
)


def test_a_version_2_store_is_upgraded_keeping_its_chain(
    state_uri: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = version_2_store(state_uri, tmp_path)
    at, prev = "2026-01-01T00:00:00.000Z", GENESIS_HASH
    with raw(old) as conn:  # what an lwr with state schema 2 wrote: two entries and the head
        for n, result in ((1, "applied"), (2, "attested")):
            rec = record(n, result=result)
            digest = chain_hash(prev, n, at, rec)
            conn.execute(
                f"INSERT INTO audit ({V2_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                (
                    n,
                    at,
                    rec.tenant_key,
                    rec.domain,
                    rec.run_id,
                    rec.actor,
                    rec.change_id,
                    rec.action,
                    rec.channel,
                    rec.target,
                    "false",
                    "true",
                    rec.result,
                    None,
                    prev,
                    digest,
                ),
            )
            prev = digest
        conn.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 2, ?) ON CONFLICT (id) "
            "DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (prev,),
        )
    kept = f"2:{prev}"
    code, out, err = lwr(capsys, "state", "migrate", "--state", old)
    assert code == 0 and "migrated from version 2 to 4" in out, err
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", old, "--head", kept)
    assert code == 0 and "2 entries, hash chain intact" in out
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    append(old, 3, 3)
    code, out, _ = lwr(capsys, "audit", "--verify", "--state", old, "--head", kept)
    assert code == 0 and "3 entries, hash chain intact" in out and "1 keyed" in out
    with raw(old) as r, pytest.raises(r.error):  # still append-only after the upgrade
        r.execute("DELETE FROM audit")


def version_2_store(state_uri: str, tmp_path: Path) -> str:
    """An empty store as an lwr with state schema 2 left it (before keyed entries)."""
    if state_uri.startswith("local:"):
        from reconciler.store.sqlite_schema import APPLICATION_ID, MIGRATIONS, statements

        path = tmp_path / "v2" / "state.db"
        path.parent.mkdir()
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            for number, script in MIGRATIONS:
                if number <= 2:
                    for statement in statements(script):
                        conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 2")
        return f"local:{path}"
    from reconciler.store.postgres import migrate

    url = f"{split_schema(state_uri)[0]}?schema=v2_{secrets.token_hex(5)}"
    assert migrate(url, up_to=2) == (0, 2)
    return url


# -- through apply ----------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "company.yaml"


def test_apply_with_the_key_writes_keyed_entries_and_never_prints_it(
    demo_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_AUDIT_KEY", KEY)
    outputs = [lwr(capsys, "apply", str(EXAMPLE), "--auto-approve")]
    assert outputs[0][0] == 0, outputs[0][2]
    outputs.append(lwr(capsys, "audit", "--verify"))
    assert outputs[-1][0] == 0 and "7 entries, hash chain intact (7 keyed" in outputs[-1][1]
    outputs.append(lwr(capsys, "audit", "--format", "json"))
    assert all(KEY not in out + err for _, out, err in outputs)


def test_a_bad_key_file_stops_apply_before_the_tenant_is_touched(
    demo_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.providers.local import LocalTenant

    key_file = demo_state / "audit.key"
    key_file.write_text(KEY, encoding="utf-8")
    key_file.chmod(0o640)
    monkeypatch.setenv("LWR_AUDIT_KEY_FILE", str(key_file))
    with LocalTenant.open(demo_state / "tenant.db") as t:
        before = t.read()
    code, _, err = lwr(capsys, "apply", str(EXAMPLE), "--auto-approve")
    assert code == 1 and "chmod 600" in err and KEY not in err
    with LocalTenant.open(demo_state / "tenant.db") as t:
        assert t.read() == before
    key_file.chmod(0o600)
    assert lwr(capsys, "apply", str(EXAMPLE), "--auto-approve")[0] == 0
    code, out, _ = lwr(capsys, "audit", "--verify")
    assert code == 0 and "(7 keyed" in out


def test_unlock_and_lock_list_on_a_missing_store_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --state is said to hold no store, and is not created to say so."""
    missing = tmp_path / "typo" / "state.db"
    for args in (["unlock", "--yes"], ["lock", "list"]):
        assert run([*args, "--state", f"local:{missing}"]) == 0
        assert "no state store at" in capsys.readouterr().out
    assert not missing.parent.exists()

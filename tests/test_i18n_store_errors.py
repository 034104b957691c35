"""The state store's and the lock's errors in Japanese with --lang ja, through the real `lwr`:
each is said in Japanese with the 「エラー: 」 prefix and no English `Error:`, exits with the
same code as in English, keeps the English text as it was, and keeps what it names (paths,
URLs) and the driver's own reason as they come.

The stores are real: SQLite files made by SqliteStateStore and then damaged, edited or locked
the way a person meets them (a tenant file given as the state, a disk error, a newer lwr, a
second process holding the tenant), and PostgreSQL as tests/conftest.py finds or starts it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from builders import SALES_SELECTORS

from reconciler.cli import run
from reconciler.i18n import Messages, Said, say
from reconciler.sqlite_files import changed_while_read
from reconciler.store.base import LockHolder
from reconciler.store.postgres import lock_key
from reconciler.store.sqlite import SCHEMA_VERSION, SqliteStateStore
from reconciler.store.sqlite_lock import lock_held_message
from reconciler.uris import split_postgres_url

ROOT = Path(__file__).resolve().parent.parent
LWR = str(Path(sys.executable).parent / "lwr")
EXAMPLE = str(ROOT / "examples" / "company.yaml")
JA = Messages("ja")


def lwr(
    lang: str, *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `lwr --lang LANG ARGS` (the reader's locale left out: --lang decides)."""
    base = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    return subprocess.run(
        [*prefix, LWR, "--lang", lang, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def both(
    *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[str, str, int]:
    """English and Japanese stderr of the same failing command, and its exit code (the same
    in both languages); the Japanese one starts with its own prefix and has no English one."""
    english = lwr("en", *args, prefix=prefix, env=env)
    japanese = lwr("ja", *args, prefix=prefix, env=env)
    assert english.returncode != 0, english.stdout + english.stderr
    assert japanese.returncode == english.returncode, japanese.stderr
    assert "Error:" not in japanese.stderr, japanese.stderr
    return english.stderr, japanese.stderr, english.returncode


def new_store(path: Path) -> Path:
    """An empty, set-up SQLite state store at `path`, as lwr makes it."""
    SqliteStateStore(path).close()
    return path


def edit(path: Path, *statements: str) -> None:
    """Change the file the way a hand (or another program) would, behind lwr's back."""
    with closing(sqlite3.connect(path)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


# -- SQLite files that are not a store lwr can use --------------------------------------------


def test_a_file_that_is_not_sqlite_is_damaged_in_either_language(demo: Path) -> None:
    (demo / "notdb.db").write_text("hello\n")
    english, japanese, code = both("audit", "--state", "local:notdb.db")
    assert code == 1
    assert english.startswith(
        "Error: state store notdb.db: cannot open: file is not a database; the state store "
        "is damaged: copy notdb.db somewhere safe, then restore it from a backup"
    ), english
    assert japanese.startswith(
        "エラー: 状態ストア notdb.db を開けません: file is not a database。"
        "状態ストアが破損しています: notdb.db を安全な場所にコピーしてから、"
        "バックアップから復元してください"
    ), japanese


def test_a_damaged_store_says_what_it_could_not_do_and_what_to_keep(demo: Path) -> None:
    path = new_store(demo / "dmg.db")
    with path.open("r+b") as f:  # every page after the header: the tables' own pages
        f.seek(4096)
        f.write(b"\xff" * (path.stat().st_size - 4096))
    english, japanese, code = both("apply", EXAMPLE, "--state", "local:dmg.db", "--auto-approve")
    assert code == 1
    assert (
        "Error: state store dmg.db: cannot list locks: database disk image is malformed; "
        "the state store is damaged: copy dmg.db together with " in english
    ), english
    assert (
        "エラー: 状態ストア dmg.db のロックの一覧を読み取れません: database disk image is "
        "malformed。状態ストアが破損しています: dmg.db を dmg.db-wal、dmg.db-shm と一緒に"
        in (japanese)
    ), japanese


def test_a_store_of_a_newer_lwr(demo: Path) -> None:
    edit(new_store(demo / "new.db"), "PRAGMA user_version = 99")
    english, japanese, code = both("audit", "--state", "local:new.db")
    assert code == 1
    assert english.startswith(
        f"Error: new.db was written by a newer lwr (state schema 99, this lwr knows up to "
        f"{SCHEMA_VERSION}); upgrade lwr"
    ), english
    assert japanese.startswith(
        f"エラー: new.db は新しい lwr で書き込まれています（状態スキーマ 99、この lwr が"
        f"扱えるのは {SCHEMA_VERSION} までです）。lwr を更新してください"
    ), japanese


def test_another_sqlite_file_given_as_the_store(demo: Path) -> None:
    edit(demo / "other.db", "CREATE TABLE x (a)")
    english, japanese, _ = both("audit", "--state", "local:other.db")
    assert "Error: other.db is an SQLite file but not an lwr state store" in english
    assert (
        "エラー: other.db は SQLite のファイルですが、lwr の状態ストアではありません"
        "（テナントのデータベースではありませんか?）。" in japanese
    ), japanese


def test_a_store_never_set_up(demo: Path) -> None:
    (demo / "empty.db").touch()
    english, japanese, _ = both("audit", "--state", "local:empty.db")
    assert "Error: state store empty.db is incomplete: it was created but never set up" in english
    assert (
        "エラー: 状態ストア empty.db は不完全です: 作成されましたが、セットアップされていません"
        in japanese
    ), japanese
    assert "`lwr state migrate`" in japanese


def test_a_store_missing_a_table(demo: Path) -> None:
    edit(new_store(demo / "inc.db"), "DROP TABLE audit_head")
    english, japanese, _ = both("audit", "--state", "local:inc.db")
    assert (
        "Error: state store inc.db is incomplete: table audit_head is missing (damaged or "
        "edited by hand); nothing was changed." in english
    ), english
    assert (
        "エラー: 状態ストア inc.db は不完全です: テーブル audit_head がありません"
        "（破損しているか、手で編集されています）。何も変更していません。" in japanese
    ), japanese


def _without_dac_override() -> tuple[str, ...]:
    """A prefix that runs `lwr` as root without the power to write where modes forbid it."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): modes do not bind root")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")


def test_a_store_in_a_read_only_directory(demo: Path) -> None:
    (demo / "ro").mkdir()
    path = new_store(demo / "ro" / "state.db")
    path.chmod(0o444)
    (demo / "ro").chmod(0o555)
    try:
        english, japanese, code = both(
            "apply",
            EXAMPLE,
            "--state",
            "local:ro/state.db",
            "--auto-approve",
            prefix=_without_dac_override(),
        )
    finally:
        (demo / "ro").chmod(0o755)
        path.chmod(0o600)
    assert code == 1
    assert english.startswith(
        "Error: state store ro/state.db: cannot open: attempt to write a readonly database; "
        "this command needs write access to ro/state.db and its directory"
    ), english
    assert japanese.startswith(
        "エラー: 状態ストア ro/state.db を開けません: attempt to write a readonly database。"
        "このコマンドには ro/state.db とそのディレクトリへの書き込み権限が必要です"
    ), japanese


def test_an_unreadable_selection_of_the_last_apply(demo: Path) -> None:
    (demo / "company.yaml").write_text(SALES_SELECTORS, encoding="utf-8")
    assert run(["apply", "company.yaml", "--auto-approve"]) == 0
    edit(demo / "state.db", "UPDATE selections SET document = x'00'")
    english, japanese, _ = both("plan", "company.yaml")
    assert "Error: the last apply's selection in the state store is unreadable: " in english
    assert "エラー: 状態ストアにある前回の適用のメンバー指定の結果を読み取れません: " in japanese


# -- a locked tenant ---------------------------------------------------------------------------

#: Holds the tenant's lock in its own process until a line arrives on stdin (in the store
#: the commands use: LWR_STATE, else state.db beside the tenant).
HOLD = """
import os, sys
from contextlib import closing
from reconciler.store import StateLocation
state = StateLocation.resolve(os.environ.get("LWR_STATE"), sys.argv[1])
with closing(state.open()) as store, store.lock(sys.argv[2], "apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def tenant_key(root: Path) -> str:
    return f"local:{(root / 'tenant.db').resolve()}"


@contextmanager
def held(root: Path) -> Iterator[None]:
    """Another process holding the demo tenant's lock; released when the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, f"local:{root}/tenant.db", tenant_key(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.communicate("\n", timeout=30)


def test_a_locked_tenant_says_who_holds_it(demo: Path) -> None:
    with held(demo):
        english, japanese, code = both("apply", EXAMPLE, "--auto-approve")
    assert code == 3
    key = tenant_key(demo)
    assert f"Error: tenant {key} is locked by " in english
    assert english.rstrip().endswith("; wait for it to finish and try again"), english
    assert f"エラー: テナント {key} はロックされています（ロックしているのは " in japanese
    assert japanese.rstrip().endswith("）。終わるのを待ってから、もう一度お試しください"), japanese


def test_a_lock_waited_for_in_vain(demo: Path) -> None:
    with held(demo):
        english, japanese, code = both("apply", EXAMPLE, "--auto-approve", "--lock-timeout", "1s")
    assert code == 3
    assert english.rstrip().endswith(
        "; wait for it to finish and try again (waited 1s for it: --lock-timeout)"
    ), english
    assert japanese.rstrip().endswith(
        "もう一度お試しください（--lock-timeout で 1s 待ちました）"
    ), japanese


def plant_lock(root: Path, *, host: str, pid: int) -> None:
    """A lock row naming `host` and `pid`, with no process holding the tenant's lock file."""
    path = new_store(root / "state.db")
    edit(
        path,
        f"INSERT INTO locks (tenant_key, user, host, pid, operation, since, token) VALUES "
        f"('{tenant_key(root)}', 'ci', '{host}', {pid}, 'apply', 'then', 'token')",
    )


def test_a_lock_of_a_reused_pid(demo: Path) -> None:
    plant_lock(demo, host=socket.gethostname(), pid=os.getpid())  # alive, but not lwr
    english, japanese, code = both("apply", EXAMPLE, "--auto-approve")
    assert code == 3
    assert (
        f"; process {os.getpid()} exists but does not hold the tenant's lock file, so it is "
        "not that apply (its pid was reused): `lwr unlock` clears the lock" in english
    ), english
    assert (
        f"。プロセス {os.getpid()} は存在しますが、テナントのロックファイルを保持していないため、"
        "その適用ではありません（pid が再利用されています）。`lwr unlock` でロックを解除できます"
        in japanese
    ), japanese


def test_a_lock_of_another_host(demo: Path) -> None:
    plant_lock(demo, host="runner-7", pid=999999)
    english, japanese, code = both("apply", EXAMPLE, "--auto-approve")
    assert code == 3
    assert "Error: tenant " in english and "ci@runner-7 (pid 999999)" in english
    assert (
        "; wait for it to finish and try again (if that run died with its host, "
        "`lwr unlock` clears the lock)" in english
    ), english
    assert "ci@runner-7（pid 999999）" in japanese
    assert (
        "終わるのを待ってから、もう一度お試しください（その実行がホストごと停止した場合は、"
        "`lwr unlock` でロックを解除できます）" in japanese
    ), japanese


def test_a_lock_timeout_that_is_not_a_duration(demo: Path) -> None:
    english, japanese, code = both("apply", EXAMPLE, "--lock-timeout", "5q")
    assert code == 1
    assert "Error: --lock-timeout '5q' is not a duration: use e.g. 30s, 5m, 1h or 0" in english
    assert "エラー: --lock-timeout '5q' は時間の長さではありません。" in japanese


def test_the_lock_messages_are_said_in_any_language() -> None:
    """What the store's lock helpers build is an i18n.Said, for LockHeld to say again."""
    holder = LockHolder("local:t.db", "ci", "runner-7", 12, "apply", "then")
    message = lock_held_message(holder)
    assert isinstance(message, Said)
    assert say(message, JA).startswith("テナント local:t.db はロックされています")


def test_a_file_changed_on_every_read_is_said_in_japanese(tmp_path: Path) -> None:
    """What a lock-free read says once every try saw a writer (RereadPolicy gave up)."""
    for what, english, japanese in (
        ("local tenant", "local tenant ", "ローカルテナント "),
        ("the attested state", "the attested state ", "確認済みの状態 "),
    ):
        message = changed_while_read(what, tmp_path / "x.db", 3)
        assert message.startswith(english + str(tmp_path / "x.db") + " was changed")
        assert say(message, JA).startswith(japanese + str(tmp_path / "x.db") + " は、"), say(
            message, JA
        )


# -- PostgreSQL --------------------------------------------------------------------------------


def closed_port() -> int:
    """A port of 127.0.0.1 nobody listens on (just bound and closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_postgresql_state_that_cannot_connect(demo: Path) -> None:
    url = f"postgresql://lwr@127.0.0.1:{closed_port()}/lwr"
    english, japanese, code = both("audit", "--state", url)
    assert code == 1
    assert f"Error: cannot connect to the state database {url}: " in english
    assert f"エラー: 状態ストアのデータベース {url} に接続できません: " in japanese
    # The driver's reason as it comes, in both.
    assert "Connection refused" in english and "Connection refused" in japanese


def test_a_postgresql_schema_name_lwr_cannot_use(demo: Path) -> None:
    url = "postgresql://lwr@127.0.0.1:1/lwr?schema=Bad"
    english, japanese, _ = both("audit", "--state", url)
    assert "Error: state URL postgresql://lwr@127.0.0.1:1/lwr?schema=Bad: schema 'Bad' must" in (
        english
    )
    assert (
        "エラー: 状態ストアの URL postgresql://lwr@127.0.0.1:1/lwr?schema=Bad: スキーマ名 'Bad' "
        in japanese
    ), japanese


def test_a_postgresql_schema_not_migrated(demo: Path, postgres_url: str) -> None:
    url = f"{postgres_url}?schema=t_never_migrated"
    english, japanese, _ = both("audit", "--state", url)
    assert '"t_never_migrated" in ' in english and " does not exist yet (this lwr" in english
    assert ' の lwr の状態スキーマ "t_never_migrated" はまだありません（この lwr には' in (
        japanese
    ), japanese
    assert "`lwr state migrate --state " in japanese


def pg_run(url: str, *statements: str) -> None:
    """Statements in the URL's schema, as an admin or another runner would run them."""
    import psycopg

    conninfo, schema = split_postgres_url(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in statements:
            conn.execute(statement)


def test_a_postgresql_state_of_a_newer_lwr(demo: Path, pg_state: str) -> None:
    pg_run(pg_state, "INSERT INTO schema_version (version, lwr_version) VALUES (99, '99.0')")
    english, japanese, _ = both("audit", "--state", pg_state)
    assert " is version 99, written by a newer lwr (this one knows up to " in english
    assert " の状態スキーマはバージョン 99 で、新しい lwr で書き込まれています" in japanese


def test_a_postgresql_lock_of_another_runner(demo: Path, pg_state: str) -> None:
    """A live session of runner-7 holds the tenant: its lock ends with its session."""
    import psycopg

    key = tenant_key(demo)
    conninfo, schema = split_postgres_url(pg_state)
    with psycopg.connect(conninfo, autocommit=True) as runner:
        runner.execute(f'SET search_path TO "{schema}"')
        runner.execute("SELECT pg_advisory_lock(%s)", (lock_key(key),))
        runner.execute(
            "INSERT INTO locks VALUES (%s, 'ci', 'runner-7', 999999, 'apply', 'then', 'token', "
            "%s, pg_backend_pid())",
            (key, lock_key(key)),
        )
        english, japanese, code = both(
            "apply", EXAMPLE, "--auto-approve", env={"LWR_STATE": pg_state}
        )
    assert code == 3
    assert english.rstrip().endswith(
        "; wait for it to finish and try again (its lock ends with its database session, "
        "also if that runner dies)"
    ), english
    assert f"エラー: テナント {key} はロックされています（ロックしているのは ci@runner-7" in (
        japanese
    )
    assert "このロックはデータベースのセッションとともに終わります" in japanese, japanese


def test_a_postgresql_lock_held_on_this_host(
    demo: Path, pg_state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_STATE", pg_state)
    with held(demo):
        english, japanese, code = both("apply", EXAMPLE, "--auto-approve")
    assert code == 3
    assert english.rstrip().endswith("; wait for it to finish and try again"), english
    assert japanese.rstrip().endswith("）。終わるのを待ってから、もう一度お試しください"), japanese

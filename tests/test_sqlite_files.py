"""The SQLite files on disk (tenant and state store), through the real `lwr` as a user meets them.

A kill during SQLite's closing checkpoint and a full disk are made with strace fault injection;
read-only use runs `lwr` as an unprivileged user (setpriv), since root ignores file modes.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

import pytest

LWR = str(Path(sys.executable).parent / "lwr")
STRACE = shutil.which("strace")
SETPRIV = shutil.which("setpriv")
NOBODY = 65534
DOMAIN = "example.co.jp"
COMPANY = Path(__file__).parent.parent / "examples" / "company.yaml"


def lwr(
    args: Sequence[str], cwd: Path, *, prefix: Sequence[str] = (), umask: int = 0o022
) -> subprocess.CompletedProcess[str]:
    """Run the installed `lwr` entry point (optionally under strace or another user)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWR_")}
    env.update(NO_COLOR="1", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8", LWR_ACTOR="files-test")
    proc = subprocess.run(
        [*prefix, LWR, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
        umask=umask,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Internal error" not in proc.stderr, proc.stderr
    return proc


def ok(args: Sequence[str], cwd: Path, *, prefix: Sequence[str] = (), umask: int = 0o022) -> str:
    """Run `lwr`, which must succeed; its stdout."""
    proc = lwr(args, cwd, prefix=prefix, umask=umask)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def in_process(
    args: Sequence[str],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """`lwr ARGS` in this process (reconciler.cli.run, what the entry point calls) with the
    environment `lwr` gives the real one: its exit code and its stderr, stripped."""
    from reconciler.cli import run

    for name in [k for k in os.environ if k.startswith("LWR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LWR_ACTOR", "files-test")
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = run(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Internal error" not in err, err
    return code, err.strip()


def needs_strace() -> None:
    if STRACE is None:
        pytest.skip("strace is not installed")
    probe = subprocess.run(
        [STRACE, "-f", "-o", "/dev/null", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode(errors='replace')}")


def strace(path: Path, inject: str) -> list[str]:
    """An strace prefix that injects `inject` into pwrite64 calls on `path` only."""
    return [
        str(STRACE),
        "-f",
        "-o",
        "/dev/null",
        "-P",
        str(path),
        "-e",
        "trace=pwrite64",
        "-e",
        f"inject=pwrite64:{inject}",
    ]


def members_yaml(db: Path) -> str:
    """A desired file listing every member on LINE WORKS: an apply that grows the file a lot."""
    with closing(sqlite3.connect(db)) as conn:
        emails = sorted(e for (e,) in conn.execute("SELECT email FROM members"))
    lines = [
        "version: 1",
        f"tenant: {DOMAIN}",
        "external_messaging:",
        "  lineworks:",
        "    enabled: true",
        "    members:",
        "      policy: exact",
        "      include:",
    ]
    return "\n".join(lines + [f"        - {e}" for e in emails]) + "\n"


def header_pages(db: Path) -> int:
    header = db.read_bytes()[:100]
    return int.from_bytes(header[28:32], "big") * int.from_bytes(header[16:18], "big")


@pytest.fixture
def grown(tmp_path: Path) -> Path:
    """A 2,000-member demo tenant and a desired file (big.yaml) that adds them all."""
    ok(
        [
            "tenant",
            "init",
            "--demo",
            "--members",
            "2000",
            "--tenant",
            f"local:{tmp_path}/tenant.db",
        ],
        tmp_path,
    )
    (tmp_path / "big.yaml").write_text(members_yaml(tmp_path / "tenant.db"), encoding="utf-8")
    return tmp_path


# --------------------------------------------------------------------------- checkpoint kill


def killed_in_checkpoint(root: Path, db: Path) -> None:
    """Apply big.yaml, killed by SIGKILL on the 2nd write into `db` itself. In WAL mode lwr
    writes a database only in the checkpoint of its last close, page 1 first: the kill leaves
    page 1 (saying how big the file now is) copied and the rest only in the -wal."""
    needs_strace()
    proc = lwr(
        ["apply", "big.yaml", "--auto-approve", "--tenant", f"local:{root}/tenant.db"],
        root,
        prefix=strace(db, "signal=KILL:when=2"),
    )
    assert proc.returncode in (-9, 137), proc.stderr  # killed where it was meant to be
    assert Path(f"{db}-wal").stat().st_size > 0


def crafted_checkpoint_kill(root: Path, db: Path) -> None:
    """The same state without strace: apply while another connection keeps the -wal (so
    nothing is checkpointed), copy the files, and copy the newest page 1 from the -wal into
    the main file, as the killed checkpoint had done."""
    holder = sqlite3.connect(db)
    holder.execute("SELECT count(*) FROM meta").fetchone()  # holds the -wal open
    try:
        ok(["apply", "big.yaml", "--auto-approve", "--tenant", f"local:{db}"], root)
        main, wal = db.read_bytes(), Path(f"{db}-wal").read_bytes()
    finally:
        holder.close()
    page_size = int.from_bytes(wal[8:12], "big")
    frames = range(32, len(wal) - page_size - 23, 24 + page_size)
    page_1 = [at + 24 for at in frames if int.from_bytes(wal[at : at + 4], "big") == 1][-1]
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    db.write_bytes(wal[page_1 : page_1 + page_size] + main[page_size:])
    Path(f"{db}-wal").write_bytes(wal)
    os.chmod(db, 0o600)
    os.chmod(f"{db}-wal", 0o600)


@pytest.mark.parametrize("how", ["strace-kill", "crafted-wal"])
def test_a_tenant_killed_in_its_closing_checkpoint_is_intact_not_corrupted(
    grown: Path, how: str
) -> None:
    tenant = grown / "tenant.db"
    if how == "strace-kill":
        killed_in_checkpoint(grown, tenant)
    else:
        crafted_checkpoint_kill(grown, tenant)
    assert tenant.stat().st_size < header_pages(tenant)  # what the header check called corrupt
    with closing(sqlite3.connect(f"file:{tenant}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    uri = f"local:{tenant}"
    # Read-only commands read it through its -wal, and leave it as it is.
    plan = ok(["plan", "big.yaml", "--tenant", uri], grown)
    assert "No changes" in plan
    shown = json.loads(ok(["show", "--format", "json", "--tenant", uri], grown))
    assert len(shown["channels"]["lineworks"]["members"]) == 2000
    assert Path(f"{tenant}-wal").exists()
    # A writer completes the checkpoint: the main file is whole again.
    ok(["apply", str(COMPANY), "--auto-approve", "--allow-destructive", "--tenant", uri], grown)
    assert not Path(f"{tenant}-wal").exists()
    assert tenant.stat().st_size >= header_pages(tenant)
    assert "No changes" in ok(["plan", str(COMPANY), "--tenant", uri], grown)


def test_a_damaged_tenant_with_a_wal_says_not_to_delete_the_wal(grown: Path) -> None:
    tenant = grown / "tenant.db"
    killed_in_checkpoint(grown, tenant)
    wal = Path(f"{tenant}-wal")
    content = bytearray(wal.read_bytes())
    content[32:4096] = b"\xa5" * (4096 - 32)  # the first frame's checksum fails: no WAL at all
    wal.write_bytes(bytes(content))
    main = tenant.read_bytes()
    for args in (["show"], ["apply", "big.yaml", "--auto-approve"]):
        proc = lwr([*args, "--tenant", f"local:{tenant}"], grown)
        assert proc.returncode == 1
        message = proc.stderr.strip()
        assert "\n" not in message and str(tenant) in message
        assert "damaged" in message and f"do not delete {wal}" in message
        assert "restore" in message and "backup" in message
        # Left as they were: a writer's close would have checkpointed and deleted the -wal.
        assert wal.read_bytes() == bytes(content) and tenant.read_bytes() == main


def test_a_state_store_killed_in_its_closing_checkpoint_keeps_its_journal(grown: Path) -> None:
    state = grown / "state.db"
    ok(["state", "migrate", "--tenant", f"local:{grown}/tenant.db"], grown)
    killed_in_checkpoint(grown, state)
    uri = f"local:{grown}/tenant.db"
    assert "hash chain intact" in ok(["audit", "--verify", "--tenant", uri], grown)
    ok(["apply", "big.yaml", "--auto-approve", "--tenant", uri], grown)  # settles what was left
    assert "No changes" in ok(["plan", "big.yaml", "--tenant", uri], grown)
    assert "2001 entries, hash chain intact" in ok(["audit", "--verify", "--tenant", uri], grown)


# --------------------------------------------------------------------------- full disk


def test_on_a_full_disk_the_error_that_stopped_apply_is_shown_not_the_lock_release(
    tmp_path: Path,
) -> None:
    needs_strace()
    uri = f"local:{tmp_path}/tenant.db"
    ok(["tenant", "init", "--demo", "--tenant", uri], tmp_path)
    ok(["state", "migrate", "--tenant", uri], tmp_path)
    apply = ["apply", str(COMPANY), "--auto-approve", "--allow-destructive", "--tenant", uri]
    # From its Nth write on, the state store's -wal gets ENOSPC. The first N that lets the lock
    # row be written fails the next step, and deleting the lock row then fails too. Every N
    # up to the lock's last write fails taking the lock and every later one does not, so
    # the first N is found by bisection (a handful of runs instead of one per write).

    clean = tmp_path / "clean"
    clean.mkdir()
    for file in tmp_path.glob("*.db*"):
        if file.is_file():  # the state's lock directory holds only lock files: it stays
            shutil.copy2(file, clean / file.name)

    def full_from(first_failing: int) -> subprocess.CompletedProcess[str]:
        # Each try from the migrated store: a later N leaves a lock row behind for the next.
        for file in tmp_path.glob("*.db*"):
            if file.is_file():
                file.unlink()
        for file in clean.iterdir():
            shutil.copy2(file, tmp_path / file.name)
        proc = lwr(
            apply,
            tmp_path,
            prefix=strace(tmp_path / "state.db-wal", f"error=ENOSPC:when={first_failing}+"),
        )
        assert proc.returncode == 1 and "database or disk is full" in proc.stderr, proc.stderr
        return proc

    low, high = 2, 40  # the lock fails from `low` writes on; `high` is past the lock
    past: dict[int, subprocess.CompletedProcess[str]] = {}
    while low < high:
        middle = (low + high) // 2
        tried = full_from(middle)
        if "cannot take the lock" in tried.stderr:
            low = middle + 1
        else:
            high, past[middle] = middle, tried
    proc = past.get(low) or full_from(low)
    assert "cannot take the lock" not in proc.stderr, proc.stderr
    assert "release the lock" not in proc.stderr, proc.stderr
    assert "cannot begin a run" in proc.stderr or "journal" in proc.stderr, proc.stderr
    # With space again, the lock left behind is taken over: its holder is gone.
    assert "Apply complete" in ok(apply, tmp_path)


# --------------------------------------------------------------------------- incomplete store


def test_a_store_missing_its_audit_table_stops_apply_before_the_tenant(tmp_path: Path) -> None:
    uri = f"local:{tmp_path}/tenant.db"
    ok(["tenant", "init", "--demo", "--tenant", uri], tmp_path)
    ok(["state", "migrate", "--tenant", uri], tmp_path)
    with closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        conn.execute("DROP TABLE audit")
    before = ok(["show", "--format", "json", "--tenant", uri], tmp_path)
    proc = lwr(
        ["apply", str(COMPANY), "--auto-approve", "--allow-destructive", "--tenant", uri], tmp_path
    )
    assert proc.returncode == 1
    assert "incomplete" in proc.stderr and "table audit is missing" in proc.stderr
    assert "backup" in proc.stderr
    assert ok(["show", "--format", "json", "--tenant", uri], tmp_path) == before


# --------------------------------------------------------------------------- file modes


def created_modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
        for p in root.rglob("*")
        if p.name not in ("big.yaml", "company.yaml")
    }


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask-000", "umask-022"])
def test_every_state_and_lock_file_is_owner_only_from_its_first_byte(
    tmp_path: Path, umask: int
) -> None:
    root = tmp_path / "run"
    root.mkdir()
    uri = f"local:{root}/lwr/tenant.db"
    creates: list[str] = []
    for args in (
        ["tenant", "init", "--demo", "--tenant", uri],
        ["plan", str(COMPANY), "--tenant", uri],
        ["apply", str(COMPANY), "--auto-approve", "--allow-destructive", "--tenant", uri],
        ["lock", "list", "--tenant", uri],
        ["audit", "--tenant", uri],
    ):
        prefix: list[str] = []
        trace = tmp_path / "trace.txt"
        if STRACE is not None:  # the mode each file was created with, -wal and -shm included
            prefix = [STRACE, "-f", "-qq", "-o", str(trace), "-e", "trace=openat,open,mkdir"]
        ok(args, root, prefix=prefix, umask=umask)
        if STRACE is not None:
            creates += [
                line
                for line in trace.read_text().splitlines()
                if str(root) in line and ("O_CREAT" in line or "mkdir(" in line)
            ]
    modes = created_modes(root)
    assert {"lwr/tenant.db", "lwr/state.db", "lwr/state.db.locks"} <= set(modes)
    assert any(name.endswith(".lock") for name in modes)
    for name, mode in modes.items():
        expected = 0o700 if (root / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {mode:04o}"
    existed: set[str] = set()
    for line in creates:
        path, mode = line.split('"')[1], line.split(")")[0].rsplit(" ", 1)[1]
        # SQLite asks for 0644 on a database file that lwr created 0600 just before.
        assert mode in ("0600", "0700") or path in existed, line
        existed.add(path)
    if STRACE is not None:
        assert any("-wal" in line for line in creates) and any("-shm" in line for line in creates)


# --------------------------------------------------------------------------- read-only use


def listing(root: Path) -> list[tuple[str, int, int, int]]:
    """Every file and folder under `root` with size, mtime and mode."""
    out = []
    for p in sorted(root.rglob("*")):
        info = p.lstat()
        out.append((str(p.relative_to(root)), info.st_size, info.st_mtime_ns, info.st_mode))
    return out


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path lies under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="lwr-ro-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(folder)


def as_nobody() -> list[str]:
    if SETPRIV is None:
        pytest.skip("setpriv is not installed: cannot run lwr as an unprivileged user")
    if os.geteuid() != 0:
        return []  # not root: file modes bind us already
    probe = subprocess.run(
        [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", LWR, "--version"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"lwr cannot run as uid {NOBODY} here: {probe.stderr[-200:]!r}")
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def make_read_only(root: Path) -> None:
    for p in sorted(root.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)


@pytest.mark.parametrize("writer_open", [False, True], ids=["no-wal", "wal-held-by-a-writer"])
def test_read_only_commands_work_on_read_only_files_and_write_nothing(
    public_tmp: Path, writer_open: bool
) -> None:
    user = as_nobody()
    root = public_tmp / "lwr"
    root.mkdir()
    uri = f"local:{root}/tenant.db"
    ok(["tenant", "init", "--demo", "--tenant", uri], public_tmp)
    shutil.copy(COMPANY, public_tmp / "company.yaml")
    holder = None
    if writer_open:  # a process keeps the tenant open: the apply's changes stay in the -wal
        holder = sqlite3.connect(root / "tenant.db")
        holder.execute("SELECT count(*) FROM members").fetchone()
    try:
        ok(
            ["apply", "company.yaml", "--auto-approve", "--allow-destructive", "--tenant", uri],
            public_tmp,
        )
        ok(["plan", "company.yaml", "--tenant", uri, "--out", "plan.json"], public_tmp)
        if writer_open:
            assert (root / "tenant.db-wal").stat().st_size > 0
        make_read_only(public_tmp)
        before = listing(public_tmp)
        commands = {
            "show": (["show", "--tenant", uri], "Tenant example.co.jp"),
            "plan": (["plan", "company.yaml", "--tenant", uri], "No changes"),
            "drift": (["drift", "company.yaml", "--tenant", uri], "In sync"),
            "export": (["export", "--tenant", uri], "version: 1"),
            "audit": (["audit", "--tenant", uri], "applied"),
            "audit --verify": (["audit", "--verify", "--tenant", uri], "hash chain intact"),
            "lock list": (["lock", "list", "--tenant", uri], "No locks held"),
            "validate": (["validate", "company.yaml", "--tenant", uri], "valid"),
            "tenant messages": (["tenant", "messages", "--tenant", uri], "見積もり"),
        }
        for name, (args, expected) in commands.items():
            proc = lwr(args, public_tmp, prefix=user)
            assert proc.returncode == 0, f"{name}: {proc.stderr}"
            assert expected in proc.stdout + proc.stderr, f"{name}: {proc.stdout}"
        proc = lwr(["show-plan", "plan.json", "--tenant", uri], public_tmp, prefix=user)
        assert proc.returncode == 0 and "apply would accept it" in proc.stderr, proc.stderr
        assert listing(public_tmp) == before
    finally:
        if holder is not None:
            holder.close()


def test_a_mistyped_path_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    ok(["tenant", "init", "--demo", "--tenant", f"local:{tmp_path}/tenant.db"], tmp_path)
    shutil.copy(COMPANY, tmp_path / "company.yaml")
    typo = tmp_path / "tenat" / "tenant.db"
    uri = f"local:{typo}"
    for args in (
        ["show", "--tenant", uri],
        ["plan", "company.yaml", "--tenant", uri],
        ["drift", "company.yaml", "--tenant", uri],
        ["export", "--tenant", uri],
        ["validate", "company.yaml", "--tenant", uri],
    ):
        proc = lwr(args, tmp_path)
        assert proc.returncode == 1, args
        assert f"no tenant at {typo}: create one with `lwr tenant init" in proc.stderr
    for args in (
        ["audit", "--tenant", uri],
        ["audit", "--state", f"local:{tmp_path}/stat/state.db"],
    ):
        proc = lwr(args, tmp_path)
        assert proc.returncode == 1, args
        assert "no state store at" in proc.stderr
    proc = lwr(["lock", "list", "--tenant", uri], tmp_path)
    assert proc.returncode == 0 and "No locks held" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["company.yaml", "tenant.db"]


# --------------------------------------------------------------------------- malformed header


def _patched(content: bytes, offset: int, value: bytes) -> bytes:
    return content[:offset] + value + content[offset + len(value) :]


MALFORMED = {
    "random bytes": lambda demo: os.urandom(8192),
    "a text file": lambda demo: b"name,email\nalice,alice@example.co.jp\n" * 100,
    "truncated header": lambda demo: demo[:60],
    "truncated file": lambda demo: demo[: len(demo) // 2],
    "wrong page size": lambda demo: _patched(demo, 16, b"\x03\x00"),
    "unknown file format": lambda demo: _patched(demo, 18, b"\x09\x09"),
    "bad payload fractions": lambda demo: _patched(demo, 21, b"\x00\x00\x00"),
    "random header": lambda demo: demo[:16] + bytes(range(84)) + demo[100:],
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_a_malformed_tenant_file_is_a_one_line_error_naming_it(
    tmp_path: Path,
    shape: str,
    demo_file: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = tmp_path / "tenant.db"
    content = MALFORMED[shape](demo_file)
    tenant.write_bytes(content)
    for args in (
        ["show"],
        ["plan", str(COMPANY)],
        ["apply", str(COMPANY), "--auto-approve", "--allow-destructive"],
    ):
        argv = [*args, "--tenant", f"local:{tenant}"]
        if args == ["show"]:  # the real entry point once a shape; the others in process
            proc = lwr(argv, tmp_path)
            code, message = proc.returncode, proc.stderr.strip()
        else:
            code, message = in_process(argv, tmp_path, monkeypatch, capsys)
        assert code == 1, args
        assert message.startswith("Error: ") and "\n" not in message, message
        assert str(tenant) in message
    assert tenant.read_bytes() == content

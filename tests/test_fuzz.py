"""Hostile input through the real CLI: every case ends in exit 0 or 1 with a message, never a
traceback, within a bounded time and memory; a broken tenant or state file is refused untouched.

In process through `reconciler.cli.run` (fast, many cases) and as real `lwr` subprocesses
(start-up, encodings, resource limits). The caps are documented in docs/reliability.md.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import run
from reconciler.providers.local import SCHEMA_VERSION, init_demo
from reconciler.store.sqlite import SqliteStateStore

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "README.md")
LWR = str(Path(sys.executable).parent / "lwr")
STRESS = os.environ.get("LWR_STRESS", "") not in ("", "0")
SECONDS = 10.0  # per small case, in process: generous for a loaded CI machine
MEMORY_LIMIT = 3 * 2**30  # address space of a subprocess: a regression fails, not thrashes


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    code = run(["validate", *args])
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    return code, out + err, elapsed


def assert_clean(code: int, text: str) -> None:
    """Exit 0 or 1, something said, and nothing of Python's insides."""
    assert code in (0, 1), text
    assert text.strip(), "no message at all"
    for leak in ("Traceback", "Internal error", "Error: <", "object at 0x"):
        assert leak not in text, text


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_corpus_case_through_the_cli(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, elapsed = validate(capsys, str(case))
    assert_clean(code, text)
    assert elapsed < SECONDS
    if code == 0:
        assert f"{case}: valid" in text
    else:
        assert f"{case}: invalid" in text and "problem" in text
        # Every problem names the file, and a position when it has one.
        assert all(
            line.startswith((str(case), "    hint:", f"{case}: invalid")) or "problem" in line
            for line in text.strip().splitlines()
        ), text


def test_the_corpus_covers_every_kind_asked_for() -> None:
    names = " ".join(p.name for p in CASES)
    for kind in (
        "unclosed",
        "tabs",
        "wrong_type",
        "astral",
        "bom",
        "crlf",
        "nul",
        "alias_bomb",
        "duplicate_key",
        "deep_nesting",
        "utf16",
        "shift_jis",
        "binary",
    ):
        assert kind in names, kind


def test_whole_corpus_in_one_real_subprocess() -> None:
    proc = subprocess.run(
        [LWR, "validate", *map(str, CASES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 1  # the corpus is mostly invalid: 1 is the worst of all files
    assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr
    for case in CASES:
        assert f"{case}: " in proc.stdout + proc.stderr, case


# --------------------------------------------------------------------------- big and deep


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def measured(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> tuple[int, str, float, int]:
    """A real `lwr` run under an address-space limit: (code, output, seconds, peak RSS MiB).

    Reaped with wait4, which reports that one child's peak memory.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [LWR, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=limited,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                proc.kill()
                proc.wait()
                raise AssertionError(f"lwr {args} still running after {timeout} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return proc.returncode, text, seconds, usage.ru_maxrss // 1024


HEAD = b"version: 1\ntenant: example.co.jp\n"
LINE = HEAD + b"external_messaging:\n  line:\n"
TEN_MB = 10 * 2**20

Generator = Callable[[int], bytes]
BIG: dict[str, tuple[Generator, str]] = {
    "greeting-10MB": (
        lambda n: LINE + b'    greeting:\n      message: "' + b"x" * n + b'"\n',
        "too long",
    ),
    "tenant-10MB": (
        lambda n: b"version: 1\ntenant: " + b"a" * n + b"\n",
        "not a valid tenant domain",
    ),
    "member-10MB": (
        lambda n: LINE + b"    members:\n      include: [" + b"a" * n + b"@example.co.jp]\n",
        "too long",
    ),
    # Sized to stay under the value cap (one per 16 bytes): their own limits must answer.
    "unknown-keys": (
        lambda n: HEAD + b"".join(b"k%d: 1\n" % i for i in range(n // 40)),
        "more problems not shown",
    ),
    "duplicate-keys": (lambda n: HEAD + b"version: 1\n" * (n // 40), "more problems not shown"),
    "aliases": (
        lambda n: HEAD + b"a: &a x\nb: [*a" + b", *a" * (n // 4) + b"]\n",
        "more aliases not shown",
    ),
    "duplicate-members": (
        lambda n: (
            LINE
            + b"    members:\n      include: ["
            + b"a@example.co.jp, " * (n // 17)
            + b"a@example.co.jp]\n"
        ),
        "more problems not shown",
    ),
    "nesting-100k": (lambda n: HEAD + b"x: " + b"[" * 100_000 + b"\n", "nesting"),
    "one-char-values": (
        lambda n: LINE + b"    members:\n      include: [" + b"a," * (n // 2) + b"a]\n",
        "too many values",
    ),
    "over-the-cap": (lambda n: LINE + b"#" * (n + 1) + b"\n", "file too large"),
}


@pytest.mark.parametrize("kind", sorted(BIG))
def test_big_hostile_input_is_refused_in_bounded_time_and_memory(kind: str, tmp_path: Path) -> None:
    # `make test` scales the size cap to 4 MiB (LWR_MAX_FILE_BYTES, which every cap follows);
    # `make stress` uses the shipped 40 MiB cap and files of 10 MB up to the cap itself.
    cap = 40 * 2**20 if STRESS else 4 * 2**20
    make, expected = BIG[kind]
    size = {"greeting-10MB": TEN_MB, "tenant-10MB": TEN_MB, "member-10MB": TEN_MB}.get(
        kind, cap - 200
    )
    if not STRESS:
        size = min(size, cap - 200)
    if kind == "over-the-cap":
        size = cap
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(make(size))
    code, out, seconds, peak_mib = measured(
        ["validate", str(path)], {"LWR_MAX_FILE_BYTES": str(cap)}
    )
    assert_clean(code, out)
    assert code == 1 and expected in out, out[-1500:]
    assert seconds < (120 if STRESS else 30), seconds
    assert peak_mib < (2000 if STRESS else 600), peak_mib


def test_dev_zero_and_a_fifo_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_MAX_FILE_BYTES", str(2**20))
    code, text, _ = validate(capsys, "/dev/zero")
    assert_clean(code, text)
    assert code == 1 and "a character device, not a regular file" in text
    code, text, _ = validate(capsys, str(tmp_path))  # a directory
    assert_clean(code, text)


# --------------------------------------------------------------------------- hypothesis

VALID_DOC = {
    "version": 1,
    "tenant": "example.co.jp",
    "external_messaging": {
        "line": {
            "enabled": True,
            "restrict_file_transfer": True,
            "greeting": {"enabled": True, "message": "友だち追加ありがとうございます。"},
            "members": {"policy": "exact", "include": ["alice@example.co.jp", "bob@example.co.jp"]},
        },
        "lineworks": {"enabled": True, "auto_grant_new_members": False, "members": "all"},
    },
    "safety": {"max_member_removals": 10},
}

# Text-level damage a person (or a bad merge) does to a YAML file.
EDITS = st.sampled_from(
    [
        ("  ", "\t"),
        (": ", ":"),
        ("- ", "-"),
        ("true", "yes"),
        ("true", "True"),
        ("enabled", "enabeld"),
        ("members", "member"),
        ("include", "includes"),
        ("exact", "Exact"),
        ("@", "\uff20"),
        ("e", "\u0435"),
        ("line", "LINE"),
        ("1", "'1'"),
        ("\n", "\r\n"),
        ("\n", "\r"),
        ("\n    ", "\n  "),
        ("\n", "\n\n"),
        ("example.co.jp", ""),
        ("alice", "alice\u200b"),
        ("all", "[all]"),
        ("{", ""),
        ("]", ""),
        ("'", ""),
        ('"', ""),
        ("version: 1", "version: 1\nversion: 2"),
        ("message", "message: x\n      message"),
    ]
)


@st.composite
def near_valid_text(draw: st.DrawFn) -> bytes:
    style = draw(st.sampled_from([None, True, False]))  # block, flow, or YAML's choice
    text = yaml.safe_dump(
        VALID_DOC,
        allow_unicode=True,
        default_flow_style=style,
        width=draw(st.sampled_from([40, 80, 4096])),
    )
    for _ in range(draw(st.integers(0, 3))):
        old, new = draw(EDITS)
        count = text.count(old)
        if count:
            nth = draw(st.integers(0, count - 1))
            at = -1
            for _ in range(nth + 1):
                at = text.index(old, at + 1)
            text = text[:at] + new + text[at + len(old) :]
    data = text.encode("utf-8")
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=3)) + data[cut:]
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    return data


@settings(
    max_examples=200 if STRESS else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=near_valid_text())
def test_near_valid_documents_through_the_cli(
    data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    code, text, elapsed = validate(capsys, str(path))
    assert_clean(code, text)
    assert elapsed < SECONDS
    if code == 1:
        # Located problems: FILE:LINE:COL wherever the parser or schema knows a position.
        assert f"{path}:" in text


@settings(
    max_examples=100 if STRESS else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_through_the_cli(
    data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(data)
    code, text, _ = validate(capsys, str(path))
    assert_clean(code, text)


def test_a_handful_of_generated_documents_as_real_subprocesses(tmp_path: Path) -> None:
    samples = [
        yaml.safe_dump(VALID_DOC, allow_unicode=True).encode(),
        yaml.safe_dump(VALID_DOC, allow_unicode=True).replace("  ", "\t").encode(),
        yaml.safe_dump(VALID_DOC, default_flow_style=True).encode()[:-5],
        b"\xef\xbb\xbf" + yaml.safe_dump(VALID_DOC, allow_unicode=True).encode(),
        yaml.safe_dump(VALID_DOC).replace("enabled", "enabeld").encode(),
    ]
    for i, data in enumerate(samples):
        path = tmp_path / f"sample-{i}.yaml"
        path.write_bytes(data)
        code, out, _, _ = measured(["validate", str(path)], timeout=60)
        assert_clean(code, out)
    assert measured(["validate", str(tmp_path / "sample-0.yaml")])[0] == 0
    assert measured(["validate", str(tmp_path / "sample-4.yaml")])[0] == 1


# --------------------------------------------------------------------------- broken files


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "tenant.db"
    init_demo(path, members=2_000).close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _newer(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()


def _garbage(path: Path) -> None:
    path.write_bytes(b"name,email\nalice,alice@example.co.jp\n" * 100)


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20_000])


def _pages_zeroed(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:12288] = b"\xff" * 8192  # the header is fine, b-tree pages are not
    path.write_bytes(bytes(data))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _other_sqlite(path: Path) -> None:
    path.unlink()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "newer-schema": (_newer, "newer lwr"),
    "not-sqlite": (_garbage, "not a SQLite database"),
    "truncated": (_truncated, "truncated"),
    "pages-corrupted": (_pages_zeroed, "corrupted"),
    "empty": (_empty, "not a SQLite database"),
    "another-sqlite-db": (_other_sqlite, "not an lwr tenant"),
}
DESIRED = (
    b"version: 1\ntenant: example.co.jp\nexternal_messaging:\n  line:\n"
    b"    restrict_file_transfer: true\n"
)
COMMANDS: list[list[str]] = [
    ["plan", "{desired}"],
    ["apply", "{desired}", "--auto-approve"],
    ["show"],
    ["export"],
    ["validate", "{desired}", "--tenant", "{tenant}"],
    ["tenant", "join", "new@example.co.jp"],
    ["drift", "{desired}"],
]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def broken_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    monkeypatch.setenv("LWR_TENANT", f"local:{tmp_path}/tenant.db")
    (tmp_path / "desired.yaml").write_bytes(DESIRED)
    yield tmp_path


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_tenant_is_refused_by_every_command_and_never_written(
    breakage: str, pristine: Path, broken_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = broken_home / "tenant.db"
    shutil.copyfile(pristine, tenant)
    damage, expected = BREAKAGES[breakage]
    damage(tenant)
    before = tenant.read_bytes()
    for command in COMMANDS:
        args = [
            a.format(desired=broken_home / "desired.yaml", tenant=f"local:{tenant}")
            for a in command
        ]
        code = run(args)
        out, err = capsys.readouterr()
        assert code == 1, (command, out, err)
        assert expected in err and "Traceback" not in err, (command, err)
        assert tenant.read_bytes() == before, command
    # Header-level damage is found before SQLite opens the file: not even side files appear.
    if breakage != "pages-corrupted":
        assert not Path(f"{tenant}-wal").exists() and not Path(f"{tenant}-shm").exists()
    assert not (broken_home / "state.db").exists() or breakage == "pages-corrupted"


@pytest.mark.parametrize("breakage", ["newer-schema", "not-sqlite", "another-sqlite-db"])
def test_a_broken_state_store_stops_apply_before_the_tenant_is_touched(
    breakage: str, pristine: Path, broken_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, state = broken_home / "tenant.db", broken_home / "state.db"
    shutil.copyfile(pristine, tenant)
    SqliteStateStore(state).close()
    if breakage == "newer-schema":
        with closing(sqlite3.connect(state)) as conn:
            conn.execute("PRAGMA user_version = 99")
            conn.commit()
    elif breakage == "not-sqlite":
        _garbage(state)
    else:
        shutil.copyfile(pristine, state)  # the tenant given as the state store by mistake
    state_before = state.read_bytes()
    tenant_rows = sqlite_dump(tenant)
    for command in (
        ["apply", "desired.yaml", "--auto-approve"],
        ["audit"],
        ["audit", "--verify"],
        ["unlock", "--yes"],
    ):
        code = run(command)
        _, err = capsys.readouterr()
        assert code == 1 and "Traceback" not in err, (command, err)
        assert "state" in err.lower(), err
        assert state.read_bytes() == state_before, command
    assert sqlite_dump(tenant) == tenant_rows  # the apply stopped before any tenant write


def sqlite_dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def test_a_broken_tenant_through_a_real_subprocess(pristine: Path, tmp_path: Path) -> None:
    tenant = tmp_path / "tenant.db"
    shutil.copyfile(pristine, tenant)
    _newer(tenant)
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [LWR, "show", "--tenant", f"local:{tenant}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "newer lwr" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before

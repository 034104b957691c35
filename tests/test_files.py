"""User-named files through the real `lwr` executable: outputs never replace the tenant or the
state, are written atomically, and every failure is one line; inputs that are not regular
files (a FIFO above all, which would block forever) are refused at once. Also: a domain's
case never matters (a mixed-case domain converges)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.providers.local import DEMO_MIN_MEMBERS, demo_directory

LWR = str(Path(sys.executable).parent / "lwr")
EXAMPLE = Path(__file__).parent.parent / "examples" / "company.yaml"
PROMPT = 20.0  # seconds: "at once", with room for a loaded CI machine


def lwr(
    cwd: Path,
    *args: str,
    timeout: float = 120.0,
    prefix: tuple[str, ...] = (),
    limit_bytes: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `lwr` in `cwd` against cwd/tenant.db (its state: cwd/state.db)."""
    env = {**os.environ, "LWR_TENANT": f"local:{cwd}/tenant.db", "NO_COLOR": "1"}
    env.pop("LWR_STATE", None)

    def limited() -> None:  # a file-size cap: a write fails part-way, as on a full disk
        assert limit_bytes is not None
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG rather than a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [*prefix, LWR, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        preexec_fn=limited if limit_bytes is not None else None,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, one `Error:` line holding every needle, and nothing of Python's insides."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-500:], proc.stderr)
    for leak in ("Traceback", "Internal error", "please report"):
        assert leak not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], proc.stderr
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def site(demo: Path) -> Path:
    """A demo tenant and its state store (one apply made it) in tmp_path: made in process
    (what is tested is what `lwr` does with them next, through the real executable)."""
    from reconciler.cli import run

    assert run(["apply", str(EXAMPLE), "--auto-approve"]) == 0
    assert (demo / "state.db").is_file()
    return demo


# --------------------------------------------------------------------------- never onto ours


@pytest.mark.parametrize(
    "name",
    [
        "tenant.db",
        "state.db",
        "state.db-wal",
        "tenant.db-shm",
        "link-to-tenant.json",
        "link-to-state.json",
        "hardlink-to-tenant.json",
        "hardlink-to-state.json",
    ],
)
def test_plan_out_never_replaces_the_tenant_or_the_state(site: Path, name: str) -> None:
    (site / "link-to-tenant.json").symlink_to(site / "tenant.db")
    (site / "link-to-state.json").symlink_to("state.db")
    os.link(site / "tenant.db", site / "hardlink-to-tenant.json")
    os.link(site / "state.db", site / "hardlink-to-state.json")
    before = {f: digest(site / f) for f in ("tenant.db", "state.db")}
    proc = lwr(site, "plan", str(EXAMPLE), "--out", name)
    line = one_line_error(proc, name, "refusing")
    assert "tenant" in line or "state" in line
    assert {f: digest(site / f) for f in before} == before
    shown = lwr(site, "show")
    assert shown.returncode == 0, shown.stderr  # the tenant still opens
    assert lwr(site, "audit", "--verify").returncode == 0  # and so does the state


def test_export_out_and_markdown_dir_never_replace_the_tenant(site: Path) -> None:
    before = digest(site / "tenant.db")
    one_line_error(lwr(site, "export", "--out", "tenant.db"), "tenant.db", "refusing")
    (site / "md").mkdir()
    (site / "md" / "part-1.md").symlink_to(site / "tenant.db")
    one_line_error(lwr(site, "plan", str(EXAMPLE), "--markdown-dir", "md"), "refusing")
    one_line_error(lwr(site, "drift", str(EXAMPLE), "--markdown-dir", "md"), "refusing")
    assert digest(site / "tenant.db") == before
    assert lwr(site, "show").returncode == 0


def test_tenant_init_force_never_replaces_the_state(site: Path) -> None:
    before = digest(site / "state.db")
    for name in ("state.db", "state.db-wal"):
        proc = lwr(site, "tenant", "init", "--demo", "--force", "--tenant", f"local:{name}")
        one_line_error(proc, "refusing", "state store")
    assert digest(site / "state.db") == before
    assert lwr(site, "audit", "--verify").returncode == 0


def test_an_explicit_state_is_protected_too(site: Path) -> None:
    state = site / "elsewhere" / "audit.db"
    state.parent.mkdir()
    assert lwr(site, "state", "migrate", "--state", f"local:{state}").returncode == 0
    before = digest(state)
    one_line_error(
        lwr(site, "plan", str(EXAMPLE), "--state", f"local:{state}", "--out", str(state)),
        "refusing",
    )
    assert digest(state) == before


# --------------------------------------------------------------------------- OS errors


def test_out_into_a_missing_directory_is_one_line(site: Path) -> None:
    one_line_error(
        lwr(site, "plan", str(EXAMPLE), "--out", "nowhere/plan.json"),
        "cannot write nowhere/plan.json",
        "directory nowhere does not exist",
    )
    one_line_error(
        lwr(site, "export", "--out", "nowhere/desired.yaml"),
        "cannot write nowhere/desired.yaml",
        "does not exist",
    )
    assert not (site / "nowhere").exists()


def test_out_onto_a_directory_or_a_fifo_is_refused_at_once(site: Path) -> None:
    (site / "adir").mkdir()
    one_line_error(lwr(site, "export", "--out", "adir"), "adir", "directory")
    os.mkfifo(site / "pipe.json")  # nobody reads it: opening it to write would block forever
    one_line_error(
        lwr(site, "plan", str(EXAMPLE), "--out", "pipe.json", timeout=PROMPT), "pipe.json", "FIFO"
    )


def test_dev_full_is_a_clean_no_space_left(site: Path) -> None:
    one_line_error(
        lwr(site, "plan", str(EXAMPLE), "--out", "/dev/full"),
        "cannot write /dev/full",
        "No space left on device",
    )
    one_line_error(lwr(site, "export", "--out", "/dev/full"), "No space left on device")
    assert lwr(site, "export", "--out", "/dev/null").returncode == 0  # a device: written to


def _without_dac_override() -> tuple[str, ...]:
    """A prefix that runs `lwr` as root without the power to write where modes forbid it."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root and setpriv (util-linux) is missing: modes are not "
            "enforced for root, so a read-only directory cannot be shown"
        )
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")


def test_out_into_a_read_only_directory_is_one_line_and_the_old_file_stays(site: Path) -> None:
    ro = site / "ro"
    ro.mkdir()
    (ro / "plan.json").write_text("old plan\n", encoding="utf-8")
    ro.chmod(0o555)
    try:
        new = lwr(
            site, "plan", str(EXAMPLE), "--out", "ro/new.json", prefix=_without_dac_override()
        )
        # The file itself is writable, but replacing it atomically needs the directory.
        old = lwr(
            site, "plan", str(EXAMPLE), "--out", "ro/plan.json", prefix=_without_dac_override()
        )
    finally:
        ro.chmod(0o755)
    one_line_error(new, "cannot write ro/new.json", "Permission denied")
    one_line_error(old, "cannot write ro/plan.json", "Permission denied")
    assert (ro / "plan.json").read_text(encoding="utf-8") == "old plan\n"
    assert sorted(p.name for p in ro.iterdir()) == ["plan.json"]


def test_a_write_that_fails_half_way_leaves_the_old_file_whole(tmp_path: Path) -> None:
    # 2,000 members to add: the plan is far larger than the cap, the tenant's files are not.
    assert lwr(tmp_path, "tenant", "init", "--demo", "--members", "2000").returncode == 0
    members = demo_directory(2000)[DEMO_MIN_MEMBERS:]
    desired = {
        "version": 1,
        "tenant": "example.co.jp",
        "external_messaging": {
            "lineworks": {"enabled": True, "members": {"policy": "exact", "include": members}}
        },
    }
    (tmp_path / "big.yaml").write_text(json.dumps(desired), encoding="utf-8")
    old = "a plan someone reviewed\n" * 10
    (tmp_path / "plan.json").write_text(old, encoding="utf-8")
    cap = 256 * 1024
    proc = lwr(tmp_path, "plan", "big.yaml", "--out", "plan.json", limit_bytes=cap)
    one_line_error(proc, "cannot write plan.json", "File too large")
    assert (tmp_path / "plan.json").read_text(encoding="utf-8") == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    whole = lwr(tmp_path, "plan", "big.yaml", "--out", "plan.json")  # no cap: it fits
    assert whole.returncode == 0, whole.stderr
    assert len(json.loads((tmp_path / "plan.json").read_text("utf-8"))["changes"]) > 1000


# --------------------------------------------------------------------------- inputs


def test_a_fifo_desired_file_is_refused_at_once(site: Path) -> None:
    os.mkfifo(site / "desired.yaml")  # no writer: reading it would block forever
    for command in (
        ["plan", "desired.yaml"],
        ["validate", "desired.yaml"],
        ["drift", "desired.yaml"],
        ["apply", "desired.yaml", "--auto-approve"],
    ):
        proc = lwr(site, *command, timeout=PROMPT)
        assert proc.returncode == 1, (command, proc.stderr)
        assert "desired.yaml" in proc.stderr and "FIFO" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr


def test_a_fifo_saved_plan_is_refused_at_once(site: Path) -> None:
    os.mkfifo(site / "plan.json")
    for command in (["show-plan", "plan.json"], ["apply", "plan.json", "--auto-approve"]):
        proc = lwr(site, *command, timeout=PROMPT)
        assert proc.returncode == 1, (command, proc.stderr)
        assert "plan.json" in proc.stderr and "FIFO" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr


def test_a_fifo_policy_file_is_refused_at_once(site: Path) -> None:
    (site / "policies").mkdir()
    os.mkfifo(site / "policies" / "rules.yaml")
    proc = lwr(site, "plan", str(EXAMPLE), "--policy-dir", "policies", timeout=PROMPT)
    assert proc.returncode == 1, proc.stderr
    assert "rules.yaml" in proc.stderr and "FIFO" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- domain case


def test_a_mixed_case_domain_converges(tmp_path: Path) -> None:
    made = lwr(tmp_path, "tenant", "init", "--demo", "--domain", "Example.CO.JP")
    assert made.returncode == 0, made.stderr
    assert lwr(tmp_path, "export", "--out", "exported.yaml").returncode == 0
    planned = lwr(tmp_path, "plan", "exported.yaml", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout  # 2 would mean changes
    text = EXAMPLE.read_text(encoding="utf-8").replace("example.co.jp", "Example.CO.JP")
    (tmp_path / "company.yaml").write_text(text.replace("alice@", "Alice@"), encoding="utf-8")
    applied = lwr(tmp_path, "apply", "company.yaml", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    again = lwr(tmp_path, "plan", "company.yaml", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout  # converged: nothing left to do


def test_tenant_in_the_file_matches_whatever_its_case(site: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "tenant: example.co.jp", "tenant: EXAMPLE.Co.Jp"
    )
    (site / "upper.yaml").write_text(text, encoding="utf-8")
    proc = lwr(site, "plan", "upper.yaml", "--detailed-exitcode")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # applied already: in sync


def test_a_mixed_case_lw_domain_is_the_directory_s_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from emulator.harness import emulated

    from reconciler.cli import run
    from reconciler.providers.local import init_demo

    with init_demo(tmp_path / "seed.db") as demo:
        state = demo.read()
    with emulated(tmp_path, state, attest=False) as harness:
        monkeypatch.chdir(tmp_path)
        for name, value in harness.env(LW_DOMAIN="Example.CO.JP").items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("LWR_STATE", raising=False)
        assert run(["show", "--tenant", harness.uri(), "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["tenant"] == "example.co.jp"

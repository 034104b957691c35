"""A throwaway PostgreSQL server for the tests: initdb into /tmp, start on a free port, stop.

No docker and no mock: the real server binaries (Debian package `postgresql`) run a private
cluster that lives only as long as the test process. Tuned for speed, not durability.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
USER = "lwr"  # the superuser role initdb creates, and the owner of the `lwr` database
# Appended to postgresql.conf.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "32MB",
}
# Durability is pointless for a test cluster deleted at exit (benchmarks keep it on).
FAST_UNSAFE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
START_ATTEMPTS = 3  # another process may take the free port between our probe and the bind


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in SERVER_PROGRAMS)


def _version(bindir: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin → (15,); numeric so that 10 sorts above 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when not installed."""
    explicit = os.environ.get("LWR_PG_BINDIR")
    if explicit:
        # Taken as is: a wrong path should fail loudly, not quietly pick another install.
        return Path(explicit)
    pg_config = shutil.which("pg_config")
    if pg_config:
        # On Debian pg_config comes from libpq-dev and may point at a client-only install.
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server(Path(out)):
            return Path(out)
    # Debian keeps the server binaries off PATH, one directory per major version.
    installed = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(d)]
    if installed:
        return max(installed, key=_version)
    initdb = shutil.which("initdb")
    if initdb and _has_server(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """One private cluster: `start()` it, hand `url()` to the code under test, `stop()` it."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root  # the temp dir: data/, server.log and the unix socket
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0
        self._stopped = False
        # PostgreSQL refuses to run as root, so under a root test run it runs as `nobody`.
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        # PG* variables of the developer's shell (PGDATA, PGPORT, ...) must not redirect us.
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self._env["HOME"] = str(root)  # nobody's home does not exist

    @classmethod
    def start(cls, bindir: Path, *, durable: bool = False) -> PgServer:
        """Start a server; `durable` keeps fsync on, as a production server runs."""
        # In /tmp, not pytest's tmp dir: pytest's root-owned 0700 dirs are closed to `nobody`,
        # and a short path keeps the unix socket under its 107-byte limit.
        server = cls(bindir, Path(tempfile.mkdtemp(prefix="lwr-pg-", dir="/tmp")))
        atexit.register(server.stop)  # safety net: no server outlives the test process
        try:
            server._initdb(durable)
            server._start()
            server._run(
                "createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", USER, "-O", USER, "lwr"
            )
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, dbname: str = "lwr") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            if (self.data / "postmaster.pid").exists():
                for mode in ("fast", "immediate"):
                    if (
                        self._run(
                            "pg_ctl",
                            "-D",
                            str(self.data),
                            "-m",
                            mode,
                            "-w",
                            "-t",
                            "30",
                            "stop",
                            check=False,
                        ).returncode
                        == 0
                    ):
                        break
        finally:
            # Even if both stops failed, a postmaster whose postmaster.pid vanishes shuts
            # itself down at its next lock file check.
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bindir / program), *args],
            cwd=self.root,
            env=self._env,
            capture_output=True,
            text=True,
            **self._as,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def _initdb(self, durable: bool) -> None:
        base = ("-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")
        proc = self._run("initdb", *base, "--locale=C.UTF-8", check=False)
        if proc.returncode != 0:  # a system without the C.UTF-8 locale
            shutil.rmtree(self.data, ignore_errors=True)
            self._run("initdb", *base, "--no-locale")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# lwr test server\n")
            settings = {
                **SETTINGS,
                **({} if durable else FAST_UNSAFE),
                "unix_socket_directories": f"'{self.root}'",
            }
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def _start(self) -> None:
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            self.log.unlink(missing_ok=True)  # so the tail below is this attempt's
            # The port goes on the command line so a retry does not have to rewrite the conf.
            proc = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port}",
                "start",
                check=False,
            )
            if proc.returncode == 0:
                return
            log = self._log_tail()
            if "could not bind" not in log and "already in use" not in log:
                break
        raise RuntimeError(
            f"PostgreSQL did not start (pg_ctl exit {proc.returncode}):\n"
            f"{proc.stdout}{proc.stderr}\n--- {self.log} (last 40 lines) ---\n"
            f"{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

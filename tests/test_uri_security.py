"""Tenant and state URIs under attack, through `lwr` itself: a desired file's `target:` may
choose which tenant and nothing else, no secret is ever printed, one tenant spelled two ways
is still one tenant, and a malformed endpoint is a usage error (reconciler.uris)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import click
import pytest
from builders import seed_demo
from emulator.harness import emulated
from emulator.server import make_credentials

from reconciler.cli import cli, run
from reconciler.providers.local import init_demo

CORPUS = Path(__file__).resolve().parent / "corpus"
SECRET = "Zq7SeCrEtXv"  # grepped for in every output
D = "example.co.jp"


class Capture:
    """A plain HTTP server on 127.0.0.1 that records every request it gets (and answers 400)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("latin-1") if length else ""
                capture.requests.append(f"{self.command} {self.path} {body}")
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture() -> Iterator[Capture]:
    with Capture() as server:
        yield server


@pytest.fixture
def lw_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: Capture) -> Path:
    """Real-looking credentials in LW_*; the operator's endpoints are the capture server too,
    so that *any* request at all is seen; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    creds = make_credentials(tmp_path / "app")
    for name, value in {
        "LW_CLIENT_ID": creds.client_id,
        "LW_CLIENT_SECRET": SECRET,
        "LW_SERVICE_ACCOUNT": creds.service_account,
        "LW_DOMAIN_ID": creds.domain_id,
        "LW_PRIVATE_KEY_FILE": str(creds.key_file),
        "LW_API_BASE": capture.url + "/v1.0",
        "LW_AUTH_URL": capture.url + "/token",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("LWR_TENANT", "LWR_STATE", "LW_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def desired_dir(root: Path, targets: dict[str, str | None], tenant: str = D) -> Path:
    """desired/NAME.yaml per entry, each for `tenant` with the given `target:` (or none)."""
    folder = root / "desired"
    folder.mkdir(exist_ok=True)
    for name, target in targets.items():
        line = f"target: {json.dumps(target)}\n" if target is not None else ""
        (folder / f"{name}.yaml").write_text(
            f"version: 1\ntenant: {tenant}\n{line}external_messaging:\n"
            "  line: {enabled: true, restrict_file_transfer: true}\n",
            encoding="utf-8",
        )
    return folder


# ------------------------------------------------------------ a file's target: may only choose


HOSTILE_TARGETS = [  # (the key refused, the target)
    ("auth_url", "lineworks:?auth_url={capture}/steal"),
    ("api_base", "lineworks:?api_base={capture}/v1.0"),
    ("auth_url", "lineworks:?domain_id=10000001&auth_url={capture}/steal"),
    ("auth_url", "lineworks:?auth%5Furl={capture}/steal"),  # percent-encoded key
    ("private_key_file", "lineworks:?private_key_file=/etc/hostname"),
    ("credentials", "lineworks:?credentials=/tmp/other-app.env"),
    ("client_id", "lineworks:?client_id=attacker-app"),
    ("scope", "lineworks:?scope=bot"),
    ("rate", "lineworks:?rate=1000000"),
    ("domain", "lineworks:?domain=" + D),  # would make any domain pass the tenant: check
]


@pytest.mark.parametrize(("key", "target"), HOSTILE_TARGETS)
def test_a_target_cannot_send_credentials_elsewhere(
    lw_env: Path, capture: Capture, capsys: pytest.CaptureFixture[str], key: str, target: str
) -> None:
    folder = desired_dir(lw_env, {"evil": target.format(capture=capture.url)})
    code = run(["plan", str(folder), "--tenant", "lineworks:"])
    out, err = capsys.readouterr()
    assert capture.requests == []  # no token request, no API call: nothing left the machine
    assert code == 3, out + err
    assert f"evil.yaml:3:1: target: {key}= cannot come from a desired file" in out, out
    assert "may only choose which tenant" in out


def test_a_target_may_choose_the_domain_id(
    lw_env: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = desired_dir(lw_env, {"ok": "lineworks:?domain_id=10000002"})
    assert run(["plan", str(folder), "--tenant", "lineworks:", "--format", "json"]) == 1
    result = json.loads(capsys.readouterr().out)["tenants"][0]
    assert result["target"] == "lineworks:?domain_id=10000002"
    # It went to the operator's endpoint (the capture server here, answering 400).
    assert capture.requests and capture.requests[0].startswith("POST /token ")


def test_state_dir_in_a_target_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with init_demo(tmp_path / "seed.db") as demo:
        state = demo.read()
    with emulated(tmp_path, state, attest=False) as harness:
        monkeypatch.chdir(tmp_path)
        for name, value in harness.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("LWR_STATE", raising=False)
        evil = tmp_path / "elsewhere" / "deep"
        folder = desired_dir(tmp_path, {"evil": f"lineworks:?state_dir={evil}"})
        assert run(["plan", str(folder), "--tenant", harness.uri()]) == 3
        assert "target: state_dir" in capsys.readouterr().out
        assert not (tmp_path / "elsewhere").exists()
        assert not harness.emulator.tokens  # refused before any token was asked for


def test_hostile_targets_of_the_corpus_are_refused(
    lw_env: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = lw_env / "desired"
    folder.mkdir()
    files = sorted(CORPUS.glob("target_*.yaml"))
    assert len(files) >= 4
    for path in files:
        text = path.read_text(encoding="utf-8").replace("{capture}", capture.url)
        (folder / path.name).write_text(text, encoding="utf-8")
    code = run(["plan", str(folder), "--tenant", "local:tenants/{tenant}.db", "--format", "json"])
    out, err = capsys.readouterr()
    assert capture.requests == []
    results = json.loads(out)["tenants"]
    assert code == 3 and {r["result"] for r in results} == {"refused"}, out + err
    assert SECRET not in out + err
    assert not list(lw_env.glob("evil*"))


def test_a_local_target_stays_in_the_tenant_template_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    for where in ("tenants/inside.db", "outside/other.db"):
        assert run(["tenant", "init", "--demo", "--domain", D, "--tenant", f"local:{where}"]) == 0
    folder = desired_dir(
        tmp_path,
        {
            "a-in": "local:tenants/inside.db",
            "b-out": "local:outside/other.db",
            "c-dotdot": "local:tenants/../outside/other.db",
            "d-abs": f"local:{tmp_path}/outside/other.db",
            "e-missing": "local:/var/tmp/lwr-nowhere/x.db",
        },
    )
    (tmp_path / "tenants" / "link.db").symlink_to(tmp_path / "outside" / "other.db")
    desired_dir(tmp_path, {"f-link": "local:tenants/link.db"})
    capsys.readouterr()
    code = run(["plan", str(folder), "--tenant", "local:tenants/{tenant}.db", "--format", "json"])
    out = capsys.readouterr().out
    results = {Path(r["file"]).stem: r for r in json.loads(out)["tenants"]}
    assert code == 3
    assert results["a-in"]["result"] == "changes"
    for name in ("b-out", "c-dotdot", "d-abs", "e-missing", "f-link"):
        assert results[name]["result"] == "refused", results[name]
        assert "outside tenants, the directory of --tenant" in results[name]["message"]
    assert not Path("/var/tmp/lwr-nowhere").exists()
    assert not (tmp_path / "outside" / "state.db").exists()


def test_a_symlink_in_the_checkout_cannot_lead_the_template_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No target: at all, but the pull request adds tenants/DOMAIN.db as a symlink."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    assert run(["tenant", "init", "--demo", "--domain", D, "--tenant", "local:outside/o.db"]) == 0
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / f"{D}.db").symlink_to(tmp_path / "outside" / "o.db")
    folder = desired_dir(tmp_path, {"a": None})
    capsys.readouterr()
    assert (
        run(["apply", str(folder), "--tenant", "local:tenants/{tenant}.db", "--auto-approve"]) == 3
    )
    assert "leads outside tenants, the directory of --tenant" in capsys.readouterr().out
    assert not (tmp_path / "outside" / "state.db").exists()


def test_a_local_target_needs_a_local_tenant_template(
    lw_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = desired_dir(lw_env, {"a": "local:tenant.db"})
    assert run(["plan", str(folder), "--tenant", "lineworks:"]) == 3
    assert "a local: target needs a local: --tenant" in capsys.readouterr().out


# ------------------------------------------------------------ one tenant, however spelled


@pytest.mark.parametrize(
    "spelling",
    [
        "local:./tenants/d1.example.db",
        "local:{root}/tenants/d1.example.db",
        "local:tenants/../tenants/d1.example.db",
        "local:tenants//d1.example.db",
        "local:tenants/link.db",
        None,
    ],
)
def test_one_tenant_spelled_two_ways_is_refused_for_both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spelling: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWR_STATE", raising=False)
    tenant_file = tmp_path / "tenants" / "d1.example.db"
    seed_demo(f"local:{tenant_file}", "d1.example")
    (tmp_path / "tenants" / "link.db").symlink_to(tenant_file)
    other = spelling.format(root=tmp_path) if spelling else None  # None: the --tenant template
    folder = desired_dir(
        tmp_path, {"a": "local:tenants/d1.example.db", "b": other}, tenant="d1.example"
    )  # each would turn file restriction on
    before = tenant_file.read_bytes()
    code = run(["apply", str(folder), "--tenant", "local:tenants/{tenant}.db", "--auto-approve"])
    out = capsys.readouterr().out
    assert code == 1, out
    why = [line for line in out.splitlines() if line.startswith(("a.yaml: ", "b.yaml: "))]
    assert len(why) == 2 and all("one desired file per tenant" in line for line in why), out
    assert tenant_file.read_bytes() == before
    assert not (tmp_path / "tenants" / "state.db").exists()  # not even its journal was opened


def test_one_lineworks_tenant_spelled_two_ways_is_refused_before_any_request(
    lw_env: Path,
    capture: Capture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LW_DOMAIN_ID", "10000001")
    folder = desired_dir(lw_env, {"a": "lineworks:?domain_id=10000001", "b": "lineworks:"})
    assert run(["plan", str(folder), "--tenant", "lineworks:"]) == 1
    out = capsys.readouterr().out
    assert "lineworks:10000001@127.0.0.1" in out and "2 files (a.yaml, b.yaml)" in out
    assert capture.requests == []


# ------------------------------------------------------------ secrets stay secret


def test_a_client_secret_in_a_tenant_uri_is_refused(
    lw_env: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["show", "--tenant", f"lineworks:?client_secret={SECRET}"],
        [
            "plan",
            str(desired_dir(lw_env, {"a": None})),
            "--tenant",
            f"lineworks:?domain_id={{tenant}}&client_secret={SECRET}",
        ],
    ):
        code = run(argv)
        out, err = capsys.readouterr()
        assert code == 1
        assert "LW_CLIENT_SECRET" in out + err and "never taken from a URI" in out + err
        assert SECRET not in out + err
    assert capture.requests == []


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_fleet_output_never_shows_a_secret(
    lw_env: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    folder = desired_dir(
        lw_env,
        {
            "a": None,
            "b": f"lineworks:?client_secret={SECRET}",
            "c": f"lineworks:?password={SECRET}",
        },
    )
    run(
        [
            "plan",
            str(folder),
            "--tenant",
            f"lineworks:?client_secret={SECRET}&domain_id=1",
            "--format",
            fmt,
        ]
    )
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert out.strip()


def test_unknown_uris_are_shown_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["show", "--tenant", f"https://admin:{SECRET}@example.com/"],
        ["show", "--tenant", f"lineworks://admin:{SECRET}@example.com/"],
        ["show", "--tenant", f"lineworks:?x_token={SECRET}"],
        ["lock", "list", "--state", f"mysql://root:{SECRET}@db/lwr"],
        ["lock", "list", "--state", f"postgresql://[::1/lwr?password={SECRET}"],
    ):
        assert run(argv) == 1
        out, err = capsys.readouterr()
        assert "Error:" in err and "Internal error" not in err, err
        assert SECRET not in out + err


def passwords() -> list[str]:
    """A password plain, with / # @ in it raw, and percent-encoded."""
    return [
        SECRET,
        f"a/{SECRET}",
        f"{SECRET}#x",
        f"x@{SECRET}",
        f"p%2F{SECRET}%23%40",
        f"{SECRET}?x",
    ]


def state_urls(host: str, db: str) -> list[str]:
    """Secret-bearing state URLs for `host` (host:port)."""
    urls = [f"postgresql://lwr:{p}@{host}/{db}" for p in passwords()]
    urls += [
        f"postgresql://lwr@{host}/{db}?password={SECRET}",
        f"postgres://lwr@{host}/{db}?sslmode=disable&password={quote(SECRET + '/#@')}",
    ]
    return urls


def every_command(root: Path, tenant: str, state: str) -> list[list[str]]:
    """Each command that takes --tenant or --state, with both given."""
    plan_file = root / "saved.json"
    fleet = root / "fleet"
    fleet.mkdir(exist_ok=True)
    (fleet / "a.yaml").write_text(
        (root / "desired.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    t, s, d = ["--tenant", tenant], ["--state", state], str(root / "desired.yaml")
    return [
        ["validate", d, *t],
        ["plan", d, *t, *s, "--out", str(plan_file)],
        *(["plan", str(fleet), *t, *s, "--format", fmt] for fmt in ("text", "json", "markdown")),
        ["apply", d, *t, *s, "--auto-approve"],
        ["apply", str(plan_file), *t, *s, "--auto-approve"],
        ["apply", str(fleet), *t, *s, "--auto-approve"],
        ["drift", d, *t, *s],
        ["export", *t, *s],
        ["show", *t, *s],
        ["attest", d, *t, *s, "--yes"],
        ["audit", *t, *s],
        ["audit", "--verify", *t, *s],
        ["audit", "--format", "json", *t, *s],
        ["audit", "head", *t, *s],
        ["lock", "list", *t, *s],
        ["lock", "list", "--format", "json", *t, *s],
        ["unlock", *t, *s, "--yes"],
        ["unlock", "some-tenant", *t, *s, "--yes"],
        ["state", "migrate", *t, *s],
        ["show-plan", str(plan_file), *t, *s],
    ]


def commands_with_tenant_or_state() -> set[str]:
    """Every `lwr` command that has a --tenant or --state option."""
    names = set()

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            if any(
                o in ("--tenant", "--state") for p in command.params for o in getattr(p, "opts", ())
            ):
                names.add(prefix + name)

    walk(cli, "")
    return names


def run_every_command(
    root: Path, tenant: str, state: str, capsys: pytest.CaptureFixture[str]
) -> str:
    """Run `every_command`; all of their stdout and stderr, checked to be free of tracebacks."""
    commands = every_command(root, tenant, state)
    covered = {
        " ".join(a[:2]) if a[0] in ("lock", "state") or a[:2] == ["audit", "head"] else a[0]
        for a in commands
    }
    assert (
        commands_with_tenant_or_state()
        - {"tenant init", "tenant join", "tenant contact", "tenant messages"}
        - {"tenant move", "tenant leave", "tenant group"}
        <= covered
    )
    seen = []
    for argv in commands:
        code = run(argv)
        out, err = capsys.readouterr()
        assert "Internal error" not in err and "Traceback" not in err, (argv, err)
        seen.append(f"$ {argv[:2]} -> {code}\n{out}{err}")  # argv itself holds the secret
    return "\n".join(seen)


@pytest.fixture
def local_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("LWR_TENANT", "LWR_STATE"):
        monkeypatch.delenv(name, raising=False)
    assert run(["tenant", "init", "--demo", "--tenant", "local:tenant.db"]) == 0
    assert run(["export", "--tenant", "local:tenant.db", "--out", "desired.yaml"]) == 0
    return tmp_path


@pytest.mark.parametrize("index", range(len(state_urls("h", "d"))))
def test_no_command_prints_the_state_password_when_unreachable(
    local_demo: Path, capsys: pytest.CaptureFixture[str], index: int
) -> None:
    capsys.readouterr()
    url = state_urls("127.0.0.1:1", "lwr")[index]  # nothing listens on port 1
    text = run_every_command(local_demo, "local:tenant.db", url, capsys)
    assert "127.0.0.1" in text  # the URL is named, its password is not
    assert SECRET not in text and quote(SECRET) not in text


@pytest.mark.parametrize("password", [SECRET, quote(f"a/{SECRET}#@?", safe=""), None])
def test_no_command_prints_the_state_password_when_connected(
    local_demo: Path, capsys: pytest.CaptureFixture[str], pg_state: str, password: str | None
) -> None:
    """The test server trusts every local connection, so every command gets through."""
    capsys.readouterr()
    base, _, schema = pg_state.partition("?")
    host = base.split("@", 1)[1].split("/", 1)[0]
    url = (
        f"postgresql://lwr:{password}@{host}/lwr?{schema}"
        if password
        else f"postgresql://lwr@{host}/lwr?password={SECRET}&{schema}"
    )
    text = run_every_command(local_demo, "local:tenant.db", url, capsys)
    assert "No locks held in postgresql://lwr" in text and "State schema in postgresql" in text
    assert "lwr:***@" in text or "password=***" in text
    assert SECRET not in text and quote(SECRET) not in text


def test_no_command_prints_the_client_secret_of_a_lineworks_tenant(
    lw_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lw_env / "desired.yaml").write_text(
        f"version: 1\ntenant: {D}\nexternal_messaging:\n  line: {{enabled: true}}\n",
        encoding="utf-8",
    )
    text = run_every_command(
        lw_env, "lineworks:?domain_id=10000001&rate=60", f"local:{lw_env}/state.db", capsys
    )
    assert SECRET not in text


# ------------------------------------------------------------ malformed endpoints


@pytest.mark.parametrize(
    "value",
    [
        "http://[::1",
        "http://[::1]:99999/v1.0",
        "www.worksapis.com/v1.0",
        "ftp://example.com/v1.0",
        "https:///v1.0",
        f"https://u:{SECRET}@example.com/v1.0",
    ],
)
@pytest.mark.parametrize("key", ["api_base", "auth_url"])
def test_a_malformed_endpoint_is_a_usage_error(
    lw_env: Path,
    capture: Capture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    value: str,
) -> None:
    monkeypatch.setenv(f"LW_{key.upper()}", value)
    for argv in (
        ["show", "--tenant", "lineworks:"],
        ["show", "--tenant", f"lineworks:?{key}={quote(value)}"],
    ):
        assert run(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"Error: lineworks: {key} ") and "Internal error" not in err, err
        assert SECRET not in err
    assert capture.requests == []


@pytest.mark.parametrize("style", ["separate", "equals", "env"])
def test_an_internal_error_quoting_the_state_url_prints_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], style: str
) -> None:
    """The last line of defence (an unexpected exception) masks the command's URIs too: a
    library's message may quote the URL it was given, password and all."""
    url = "postgresql://lwr:Zq7SeCrEtXv@127.0.0.1:1/lwr"

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError(f"driver bug while opening {url} (password=Zq7SeCrEtXv)")

    monkeypatch.setattr("reconciler.store.StateLocation.resolve", broken)
    monkeypatch.chdir(tmp_path)
    args = {"separate": ["--state", url], "equals": [f"--state={url}"], "env": []}[style]
    if style == "env":
        monkeypatch.setenv("LWR_STATE", url)
    assert run(["audit", *args]) == 1
    err = capsys.readouterr().err
    assert "Internal error: RuntimeError" in err
    assert "Zq7SeCrEtXv" not in err and "SeCrEt" not in err

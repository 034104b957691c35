"""reconciler.uris on its own: redaction, identity, what a file's target: may say."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import Refused, UsageError
from reconciler.targets import file_target
from reconciler.uris import (
    check_endpoint,
    lineworks_key,
    lineworks_query,
    redact,
    scrub,
    tenant_key,
)

S = "Zq7SeCrEtXv"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (f"postgresql://lwr:{S}@db:5432/lwr", "postgresql://lwr:***@db:5432/lwr"),
        (f"postgresql://lwr:a/{S}@db/lwr", "postgresql://lwr:***@db/lwr"),
        (f"postgresql://lwr:{S}#x@db/lwr", "postgresql://lwr:***@db/lwr"),
        (f"postgresql://lwr:x@{S}@db/lwr", "postgresql://lwr:***@db/lwr"),
        (f"postgresql://lwr:{S}?x@db/lwr", "postgresql://lwr:***@db/lwr"),
        (f"postgresql://lwr:%2F{S}%40@db/lwr?schema=s", "postgresql://lwr:***@db/lwr?schema=s"),
        (
            f"postgresql://lwr@db/lwr?sslmode=require&password={S}@x",
            "postgresql://lwr@db/lwr?sslmode=require&password=***",
        ),
        (f"postgres://lwr@db/lwr?pass%77ord={S}", "postgres://lwr@db/lwr?pass%77ord=***"),
        ("postgresql://lwr@db/lwr?schema=t", "postgresql://lwr@db/lwr?schema=t"),
        (f"lineworks:?domain_id=1&client_secret={S}", "lineworks:?domain_id=1&client_secret=***"),
        (f"lineworks:?x_token={S}&rate=60", "lineworks:?x_token=***&rate=60"),
        (f"https://{S}@example.com/", "https://***@example.com/"),
        ("local:tenants/a.db", "local:tenants/a.db"),
        ("", ""),
    ],
)
def test_redact(uri: str, shown: str) -> None:
    assert redact(uri) == shown
    assert S not in redact(uri)


def test_scrub_masks_the_pieces_a_parser_quotes() -> None:
    url = f"postgresql://lwr:x@{S}@127.0.0.1/lwr"
    text = f"failed to resolve host '{S}@127.0.0.1'; url {url}; password={S}"
    assert S not in scrub(text, url)


def test_tenant_key_resolves_every_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.db").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "t")
    spellings = [
        "local:t/a.db",
        "local:./t/a.db",
        f"local:{tmp_path}/t/a.db",
        "local:t/../t/a.db",
        "local:t//a.db",
        "local:link/a.db",
    ]
    assert {tenant_key(s) for s in spellings} == {f"local:{(tmp_path / 't' / 'a.db').resolve()}"}


def test_lineworks_key_is_domain_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LW_DOMAIN_ID", "42")
    monkeypatch.delenv("LW_API_BASE", raising=False)
    monkeypatch.delenv("LW_CREDENTIALS_FILE", raising=False)
    assert tenant_key("lineworks:") == tenant_key("lineworks:?domain_id=42") == "lineworks:42"
    assert lineworks_key("42", "https://WWW.worksapis.com:443/v1.0/") == "lineworks:42"
    assert lineworks_key("42", "http://[::1]:8080/v1.0") == "lineworks:42@[::1]:8080"
    assert lineworks_key("42", f"https://u:{S}@h.example/v1") == "lineworks:42@h.example"


def test_lineworks_query_refuses_secrets_repeats_and_authorities() -> None:
    with pytest.raises(UsageError, match="LW_CLIENT_SECRET") as e:
        lineworks_query(f"lineworks:?client_secret={S}")
    assert S not in str(e.value)
    with pytest.raises(UsageError, match="given twice"):
        lineworks_query("lineworks:?domain_id=1&domain_id=2")
    with pytest.raises(UsageError, match="unexpected text") as e:
        lineworks_query(f"lineworks://u:{S}@evil/?domain_id=1")
    assert S not in str(e.value)
    with pytest.raises(UsageError, match="not shown") as e:  # a secret pasted without a key
        lineworks_query(f"lineworks:?rate=60&{S}%2F+")
    assert S not in str(e.value)
    assert lineworks_query("lineworks:?rate=60&scope=") == {"rate": "60"}


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://h:99999/", "h/v1.0", "ftp://h/", "https:///x", "https://u:p@h/"]
)
def test_check_endpoint_refuses(url: str) -> None:
    with pytest.raises(UsageError, match=r"^lineworks: api_base "):
        check_endpoint("api_base", url)


def test_check_endpoint_accepts() -> None:
    assert check_endpoint("api_base", "http://127.0.0.1:8080/v1.0/") == "http://127.0.0.1:8080/v1.0"


def test_file_target_lays_the_domain_over_the_template() -> None:
    template = "lineworks:?rate=60&state_dir=.lwr/{tenant}"
    assert (
        file_target("lineworks:?domain_id=7", "d.example", template, "f: ")
        == "lineworks:?rate=60&state_dir=.lwr%2Fd.example&domain_id=7"
    )
    assert file_target(None, "d.example", "local:t/{tenant}.db", "f: ") == "local:t/d.example.db"
    with pytest.raises(Refused, match=r"^refused: f:3:1: target: api_base= cannot come"):
        file_target("lineworks:?api_base=http://x", "d", template, "f:3:1: ")
    with pytest.raises(Refused, match="Domain ID"):
        file_target("lineworks:?domain_id=../x", "d", template, "f: ")


def test_file_target_local_stays_in_the_template_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    template = "local:tenants/{tenant}.db"
    assert file_target("local:tenants/x.db", "d", template, "") == "local:tenants/x.db"
    assert file_target("local:./tenants/sub/x.db", "d", template, "")
    for outside in ("local:x.db", "local:tenants/../x.db", "local:/etc/passwd"):
        with pytest.raises(Refused, match="outside tenants"):
            file_target(outside, "d", template, "")
    assert file_target("local:x.db", "d", "local:{tenant}.db", "") == "local:x.db"
    with pytest.raises(Refused, match="needs a local: --tenant"):
        file_target("local:x.db", "d", "lineworks:", "")


def test_split_postgres_url_keeps_what_libpq_needs() -> None:
    from reconciler.uris import split_postgres_url

    url = f"postgresql://lwr:a%2F{S}@db:5432/lwr?sslmode=require&schema=t_1"
    assert split_postgres_url(url) == (
        f"postgresql://lwr:a%2F{S}@db:5432/lwr?sslmode=require",
        "t_1",
    )
    for ambiguous in (
        f"postgresql://lwr:a/{S}@db/lwr",
        f"postgresql://lwr:x@{S}@db/lwr",
        f"postgresql://lwr:{S}#@db/lwr",
        "postgresql://[::1/lwr",
    ):
        with pytest.raises(UsageError, match="percent-encode") as e:
            split_postgres_url(ambiguous)
        assert S not in str(e.value)

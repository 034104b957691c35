"""The throwaway PostgreSQL server (tests/pgserver.py) is real and speaks UTF-8 as `lwr`."""

from __future__ import annotations

import psycopg

TEXT = "外部トーク：営業部（東京）の全員に許可！"


def test_postgres_server_round_trips_japanese_as_lwr(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SELECT current_user").fetchone() == ("lwr",)
        conn.execute("CREATE TEMP TABLE greeting (message text NOT NULL)")
        conn.execute("INSERT INTO greeting (message) VALUES (%s)", (TEXT,))
        # length() counts characters on the server: a byte-level mix-up would show here.
        row = conn.execute(
            "SELECT message, length(message), octet_length(message) FROM greeting"
        ).fetchone()
        assert row == (TEXT, len(TEXT), len(TEXT.encode("utf-8")))

"""The command line, run as a user runs it: a separate process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, database: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_keys_create_list_revoke(database: Path) -> None:
    created = run(
        "keys", "create", "--name", "Gorgias", "--scope", "route", "--scope", "read", database=database
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rr_")
    key_id = key[3:15]

    listed = run("keys", "list", database=database).stdout
    assert key_id in listed
    assert "Gorgias" in listed
    assert "read route" in listed
    assert key not in listed
    assert key[16:] not in listed

    assert run("keys", "revoke", key_id, database=database).returncode == 0
    assert "revoked" in run("keys", "list", database=database).stdout
    again = run("keys", "revoke", key_id, database=database, check=False)
    assert again.returncode == 1


def test_an_unknown_scope_is_refused(database: Path) -> None:
    result = run("keys", "create", "--name", "x", "--scope", "admin", database=database, check=False)
    assert result.returncode != 0
    assert "admin" in result.stderr


def test_openapi_matches_the_committed_document(database: Path) -> None:
    printed = json.loads(run("openapi", database=database).stdout)
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    assert printed == committed, "run `python -m app openapi > openapi/openapi.json` and commit it"


def test_webhooks_requeue_sends_a_parked_event_round_again(database: Path) -> None:
    run("db", "upgrade", database=database)
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO webhook_events (id, channel, topic, occurred_at, received_at, status, attempts,"
            " next_attempt_at, last_error) VALUES ('wh-parked', 'shopify_ca', 'returns/request',"
            " '2026-11-20 15:00:00', '2026-11-20 15:00:01', 'parked', 8, '2026-11-20 16:00:00', 'boom')"
        )

    assert run("webhooks", "requeue", "wh-parked", database=database).stdout.strip() == "requeued wh-parked"
    with sqlite3.connect(database) as connection:
        status, attempts = connection.execute(
            "SELECT status, attempts FROM webhook_events WHERE id = 'wh-parked'"
        ).fetchone()
    assert (status, attempts) == ("pending", 0)
    again = run("webhooks", "requeue", "wh-parked", database=database, check=False)
    assert again.returncode == 1
    assert "no parked event" in again.stderr

"""The command line, run as a user runs it: a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.db.migrate import upgrade
from app.runtime import Runtime
from app.services import api_keys
from app.services.api_keys import Scope
from app.settings import DEFAULT_MERCHANT_POLICY, Settings
from tests.conftest import running

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


async def _route_sandbox_returns(database: Path, bodies: list[dict[str, str]]) -> None:
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(_env_file=None, database_url=url, log_level="WARNING", log_format="json")  # type: ignore[call-arg]
    async with running(settings) as app:
        runtime: Runtime = app.state.runtime
        async with runtime.database.transaction() as session:
            _row, key = await api_keys.issue(session, "cli test", {Scope.route})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cli.test") as client:
            for body in bodies:
                headers = {"Authorization": f"Bearer {key}"}
                response = await client.post("/v1/returns/route", json=body, headers=headers)
                assert response.status_code == 201, response.text


async def test_replay_prints_what_a_draft_would_change(database: Path, tmp_path: Path) -> None:
    await _route_sandbox_returns(
        database,
        [
            {"order_ref": "#1002", "reason": "size_or_fit", "as_of": "2026-11-26T15:00:00Z"},
            {"order_ref": "#1001", "reason": "damaged", "as_of": "2026-11-26T15:00:00Z"},
            {"order_ref": "113-4567890-1234567", "reason": "other", "as_of": "2026-12-03T15:00:00Z"},
        ],
    )
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
        .replace('version: "2026.11"', 'version: "2026.12"')
        .replace("  days: 30 ", "  days: 45 "),
        encoding="utf-8",
    )
    rows_before = _decision_count(database)

    printed = run("replay", "--policy", str(draft), database=database).stdout
    since_later = run("replay", "--policy", str(draft), "--since", "2099-01-01", database=database).stdout
    first_only = run("replay", "--policy", str(draft), "--limit", "1", database=database).stdout

    assert "Replayed 2 shopify_ca decisions under the draft shopify-ca-default@2026.12." in printed
    assert "Would change: 1 (50%); unchanged: 1." in printed
    assert "eligible: false → true" in printed
    assert "#1002 (decision " in printed
    assert "Replayed 0 shopify_ca decisions created since 2099-01-01T00:00:00+00:00" in since_later
    assert "Replayed 1 shopify_ca decisions under the draft" in first_only
    assert "Stopped at the limit: newer decisions were not replayed." in first_only
    assert _decision_count(database) == rows_before == 3


def test_replay_refuses_a_bad_draft_naming_the_line(database: Path, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8").replace("  days: 30 ", "  days: -3 ")
    )
    line = next(number for number, text in enumerate(draft.read_text().splitlines(), 1) if "days: -3" in text)

    result = run("replay", "--policy", str(draft), database=database, check=False)

    assert result.returncode == 1
    assert f"{draft}: line {line}: " in result.stderr
    assert "window.days: Input should be greater than 0" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "marker", "problem"),
    [
        (
            "must:\n",
            "must: &loop [*loop]\nx-must:\n",
            "&loop",
            "the alias *loop is inside the value it names",
        ),
        ("  days: 30 ", "  days: " + "9" * 5_000 + " ", "days: 999", "(5,000 characters)' cannot be read"),
        (
            "  days: 30 ",
            "  days: 99999999999 ",
            "99999999999",
            "window.days: Input should be less than or equal",
        ),
    ],
    ids=["self-referencing alias", "5,000-digit integer", "a window of 99,999,999,999 days"],
)
def test_replay_refuses_a_hostile_draft_as_the_api_does(
    database: Path, tmp_path: Path, old: str, new: str, marker: str, problem: str
) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8").replace(old, new))
    line = next(number for number, text in enumerate(draft.read_text().splitlines(), 1) if marker in text)

    result = run("replay", "--policy", str(draft), database=database, check=False)

    assert result.returncode == 1
    assert result.stderr.startswith(f"draft refused: {draft}: line {line}: ")
    assert problem in result.stderr


def test_serve_refuses_to_start_on_a_bad_policy_file(database: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8").replace("  other: customer\n", ""))

    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", "0"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "CHANNEL_SHOPIFY_CA_POLICY_FILE": str(policy),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert f"not starting: {policy}: line " in result.stderr
    assert "no fault given for reason(s) other" in result.stderr
    assert not database.exists()  # refused before anything was opened


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_incomplete_channel_stops_start_up_naming_the_missing_setting(
    database: Path, command: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", command],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "CHANNEL_AMAZON_CA_LWA_CLIENT_ID": "amzn1.application-oa2-client.test",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "not starting: channel amazon_ca: CHANNEL_AMAZON_CA_MARKETPLACE_ID is missing" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists()


def _decision_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM decisions").fetchone()[0])


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

"""The Reports API flow against a stand-in at the transport (respx): createReport, getReport until
DONE, getReportDocument, the gzip download; and the worker's import of what it brings."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from pydantic import SecretStr

from app.channels import AmazonChannel
from app.connectors.amazon_reports import LIMITS, AmazonReports, ReportFailed
from app.connectors.ratelimit import LocalBuckets, RateLimiter
from app.runtime import Runtime
from app.services.outcome_jobs import OutcomeJobs, Schedule
from tests.vendor import VENDOR

ENDPOINT = "https://sp-api.test"
TOKEN_URL = "https://lwa.test/auth/o2/token"
DOCUMENT_URL = "https://tortuga.test/returns-report?X-Amz-Signature=abc"
REPORT = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "published"
    / "amazon"
    / "handmade"
    / "returns-report.tsv"
).read_bytes()
MODEL = json.loads((VENDOR / "amazon-sp-api" / "reports_2021-06-30.json").read_text(encoding="utf-8"))


def channel() -> AmazonChannel:
    return AmazonChannel(
        key="amazon_us",
        timezone="America/Los_Angeles",
        currency="USD",
        marketplace_id="ATVPDKIKX0DER",
        endpoint=ENDPOINT,
        lwa_token_url=TOKEN_URL,
        lwa_client_id="amzn1.application-oa2-client.test",
        lwa_client_secret=SecretStr("secret"),
        refresh_token=SecretStr("Atzr|refresh"),
    )


def valid(definition: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body`, checked against the model's definition (what Amazon really sends)."""
    jsonschema.validate(body, {**MODEL["definitions"][definition], "definitions": MODEL["definitions"]})
    return body


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def amazon() -> Iterator[dict[str, Any]]:
    """The stand-in: statuses of getReport in turn, and what was asked."""
    seen: dict[str, Any] = {"created": [], "polls": 0, "statuses": ["IN_QUEUE", "IN_PROGRESS", "DONE"]}
    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).respond(json={"access_token": "Atza|token", "expires_in": 3600})

        def create(request: httpx.Request) -> httpx.Response:
            assert request.headers["x-amz-access-token"] == "Atza|token"
            body = valid("CreateReportSpecification", json.loads(request.content))
            seen["created"].append(body)
            return httpx.Response(202, json=valid("CreateReportResponse", {"reportId": "50039018"}))

        def report(request: httpx.Request) -> httpx.Response:
            status = seen["statuses"][min(seen["polls"], len(seen["statuses"]) - 1)]
            seen["polls"] += 1
            body = {
                "reportId": "50039018",
                "reportType": "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
                "createdTime": "2026-12-01T10:00:00Z",
                "processingStatus": status,
            }
            if status == "DONE":
                body["reportDocumentId"] = "amzn1.spdoc.1.4.na.test"
            return httpx.Response(200, json=valid("Report", body))

        mock.post(f"{ENDPOINT}/reports/2021-06-30/reports").mock(side_effect=create)
        mock.get(f"{ENDPOINT}/reports/2021-06-30/reports/50039018").mock(side_effect=report)
        mock.get(f"{ENDPOINT}/reports/2021-06-30/documents/amzn1.spdoc.1.4.na.test").respond(
            json=valid(
                "ReportDocument",
                {
                    "reportDocumentId": "amzn1.spdoc.1.4.na.test",
                    "url": DOCUMENT_URL,
                    "compressionAlgorithm": "GZIP",
                },
            )
        )
        seen["download"] = mock.get(DOCUMENT_URL).respond(content=gzip.compress(REPORT))
        yield seen


def reports(http: httpx.AsyncClient, sleep: Any = no_sleep) -> AmazonReports:
    """The connector as `build` makes it, with waits that take no time."""
    built = AmazonReports.build(channel(), http, buckets=LocalBuckets())
    limiters = {
        operation: RateLimiter(
            limiter.buckets, limiter.key, limiter.limit, max_wait=300.0, upstream=operation, sleep=sleep
        )
        for operation, limiter in built._limiters.items()
    }
    return AmazonReports(built.channel, http, tokens=built._tokens, limiters=limiters, sleep=sleep)


def test_the_buckets_are_the_models_usage_plans() -> None:
    for operation, limit in LIMITS.items():
        [(path, method)] = [
            (p, m)
            for p, ops in MODEL["paths"].items()
            for m, op in ops.items()
            if isinstance(op, dict) and op.get("operationId") == operation
        ]
        description = MODEL["paths"][path][method]["description"]
        assert f"| {limit.rate:g} | {limit.burst} |" in description, operation


async def test_a_report_is_created_waited_for_and_downloaded(amazon: dict[str, Any]) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    async with httpx.AsyncClient() as http:
        document = await reports(http).returns_report(start, start + timedelta(days=30))
    assert document.report_id == "50039018"
    assert document.compression == "GZIP"
    assert gzip.decompress(document.content or b"") == REPORT
    [created] = amazon["created"]
    assert created["reportType"] == "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
    assert created["marketplaceIds"] == ["ATVPDKIKX0DER"]
    assert amazon["polls"] == 3
    # The pre-signed URL is the credential: no SP-API token goes to the document's host.
    assert "x-amz-access-token" not in amazon["download"].calls.last.request.headers


async def test_a_cancelled_report_means_no_returns_and_a_fatal_one_fails(amazon: dict[str, Any]) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    async with httpx.AsyncClient() as http:
        amazon["statuses"] = ["CANCELLED"]
        nothing = await reports(http).returns_report(start, start + timedelta(days=1))
        assert nothing.content is None
        amazon["polls"] = 0
        amazon["statuses"] = ["IN_PROGRESS", "FATAL"]
        with pytest.raises(ReportFailed, match="FATAL"):
            await reports(http).returns_report(start, start + timedelta(days=1))


async def test_a_throttled_create_is_retried_after_its_bucket_was_emptied() -> None:
    calls = {"n": 0}
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    def create(_request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, json={"errors": [{"code": "QuotaExceeded", "message": "x"}]})
        return httpx.Response(202, json={"reportId": "7"})

    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).respond(json={"access_token": "Atza|token", "expires_in": 3600})
        mock.post(f"{ENDPOINT}/reports/2021-06-30/reports").mock(side_effect=create)
        async with httpx.AsyncClient() as http:
            client = reports(http, sleep=wait)
            start = datetime(2026, 11, 1, tzinfo=UTC)
            report_id = await client.create_report("GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE", start, start)
    assert (report_id, calls["n"]) == ("7", 2)
    # Amazon said its bucket was empty: the retry waited for a token of createReport's plan (1/60 s).
    assert max(waits) == pytest.approx(1 / 0.0167, rel=0.01)


async def test_the_worker_imports_the_fetched_report_once_a_day(
    amazon: dict[str, Any], runtime: Runtime
) -> None:
    async with httpx.AsyncClient() as http:
        jobs = OutcomeJobs(
            runtime.database,
            runtime.connectors,
            {"amazon_us": reports(http)},
            {"amazon_us": channel()},
            Schedule(import_every=timedelta(hours=24), import_days=30),
        )
        summary = await jobs.import_amazon("amazon_us")
        assert summary is not None
        assert (summary.status, summary.report, summary.lines, summary.unmatched) == (
            "succeeded",
            "50039018",
            4,
            4,
        )
        assert await jobs.import_amazon("amazon_us") is None  # not due again yet
        assert len(amazon["created"]) == 1
        amazon["statuses"] = ["FATAL"]
        amazon["polls"] = 0
        failed = await jobs.import_amazon("amazon_us", force=True)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "Amazon could not produce report 50039018 (FATAL).")

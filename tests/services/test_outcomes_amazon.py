"""Amazon outcomes from the returns report: lines matched by order id and SKU, the rest kept and
matched later, and every odd document or line counted and explained instead of raised."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from app.services import amazon_import
from app.services.amazon_import import ImportSummary
from app.services.amazon_report import COLUMNS, line_outcome
from app.services.api_keys import Scope
from app.services.outcomes import OutcomeStatus
from tests.conftest import MakeKey

PUBLISHED = Path(__file__).resolve().parents[1] / "fixtures" / "published" / "amazon"
# Hand-made lines under Amazon's documented header (see SOURCES.md): sandbox orders 113 (KET-01,
# refunded), 116 (TEA-12, approved), 114 (SKL-10, closed with an A-to-z claim), and 119, which the
# service never saw.
HANDMADE = (PUBLISHED / "handmade" / "returns-report.tsv").read_bytes()


@pytest.fixture
async def agent(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route, Scope.read)


async def route(client: httpx.AsyncClient, headers: dict[str, str], order_ref: str, **body: Any) -> str:
    body = {"order_ref": order_ref, "reason": "damaged", "as_of": "2026-12-01T15:00:00Z", **body}
    response = await client.post("/v1/returns/route", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["decision_id"])


async def outcome_of(client: httpx.AsyncClient, headers: dict[str, str], decision_id: str) -> Any:
    response = await client.get(f"/v1/decisions/{decision_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["outcome"]


async def import_report(runtime: Runtime, content: bytes, compression: str | None = None) -> ImportSummary:
    return await amazon_import.import_document(
        runtime.database,
        channel="amazon_us",
        currency="USD",
        content=content,
        compression=compression,
        report="returns.tsv",
        source="file",
    )


def test_the_published_header_is_the_one_read() -> None:
    header = (PUBLISHED / "returns-report.header.tsv").read_text(encoding="utf-8").rstrip("\n").split("\t")
    assert tuple(header) == COLUMNS


@pytest.mark.parametrize(
    ("status", "resolution", "refunded", "outcome"),
    [
        ("Completed", "StandardRefund", "59.99", OutcomeStatus.refunded),
        ("Completed", "ReturnlessRefund", "12.00", OutcomeStatus.kept_returnless),
        ("Closed", "Replacement", None, OutcomeStatus.exchanged),
        ("Rejected", "StandardRefund", None, OutcomeStatus.declined),
        ("Completed", "StandardRefund", None, OutcomeStatus.closed_without_return),
        ("Approved", "StandardRefund", None, OutcomeStatus.open),
        ("Pending Authorization", None, None, OutcomeStatus.open),
    ],
)
def test_what_a_line_says(
    status: str, resolution: str | None, refunded: str | None, outcome: OutcomeStatus
) -> None:
    assert line_outcome(status, resolution, Decimal(refunded) if refunded else None) is outcome


async def test_lines_match_decisions_by_order_and_sku_and_the_rest_wait_for_theirs(
    client: httpx.AsyncClient, agent: dict[str, str], runtime: Runtime
) -> None:
    refunded = await route(client, agent, "113-4567890-1234567")
    claimed = await route(client, agent, "114-2233445-5667788")
    other_sku = await route(client, agent, "112-3344556-7788990", items=[{"sku": "SCALE-05"}])

    summary = await import_report(runtime, HANDMADE)

    assert (summary.status, summary.lines, summary.matched, summary.unmatched, summary.invalid) == (
        "succeeded",
        4,
        2,
        2,
        0,
    )
    first = await outcome_of(client, agent, refunded)
    assert first["status"] == "refunded"
    assert first["refunded"] == {"amount": "59.99", "currency": "USD"}
    assert (first["in_policy"], first["a_to_z_claim"], first["source"]) == (True, False, "amazon_report")
    assert first["resolved_at"] == "2026-12-09T00:00:00Z"  # the return's delivery date
    second = await outcome_of(client, agent, claimed)
    assert (second["status"], second["in_policy"], second["a_to_z_claim"]) == (
        "closed_without_return",
        False,
        True,
    )
    assert await outcome_of(client, agent, other_sku) is None

    unmatched = (await client.get("/v1/outcomes/unmatched", headers=agent)).json()
    assert unmatched["counts"] == {"amazon_us": 2}
    reasons = {line["order_id"]: line["problem"] for line in unmatched["items"]}
    assert reasons["119-0000000-0000001"] == "no decision about order 119-0000000-0000001 on amazon_us (yet)"

    # The decision about 116 comes after its line: the next catch-up matches it.
    late = await route(client, agent, "116-1122334-4556677")
    assert await outcome_of(client, agent, late) is None
    assert await amazon_import.match_late_lines(runtime.database) == 1
    assert (await outcome_of(client, agent, late))["status"] == "open"
    assert await amazon_import.match_late_lines(runtime.database) == 0

    # The same report again (a later fetch): lines are replaced, not added.
    again = await import_report(runtime, gzip.compress(HANDMADE), compression="GZIP")
    assert (again.lines, again.matched, again.unmatched) == (4, 3, 1)


async def test_unknown_columns_and_bad_lines_are_counted_and_explained(
    client: httpx.AsyncClient, agent: dict[str, str], runtime: Runtime
) -> None:
    decision_id = await route(client, agent, "113-4567890-1234567")
    header = "Order ID\tReturn request status\tMerchant SKU\tRefunded Amount\tGift wrap\n"
    body = (
        "113-4567890-1234567\tCompleted\tKET-01\t59.99\tno\n"
        "not-an-order\tCompleted\tKET-01\t1.00\n"
        "113-4567890-1234567\tCompleted\tKET-01\tlots\n"
        "113-4567890-1234567\tCompleted\tKET-01\t1.00\tno\textra\n"
    )
    summary = await import_report(runtime, (header + body).encode())
    assert (summary.status, summary.lines, summary.matched, summary.invalid) == ("succeeded", 1, 1, 3)
    assert summary.problems == [
        "columns not in Amazon's documented list, ignored: Gift wrap",
        "line 3: order id 'not-an-order' is not an Amazon order id (3-7-7 digits)",
        "line 4: Refunded Amount 'lots' is not an amount",
        "line 5: 6 fields under a header of 5",
    ]
    assert (await outcome_of(client, agent, decision_id))["status"] == "refunded"


@pytest.mark.parametrize(
    ("content", "compression", "error"),
    [
        (gzip.compress(HANDMADE)[:-40], "GZIP", "the gzip document is cut short: its end is missing"),
        (
            HANDMADE,
            "GZIP",
            "the document is not gzip (Error -3 while decompressing data: incorrect header check)",
        ),
        (b"", "ZIP", "the document is compressed with 'ZIP', which is not gzip"),
        (b"\n\n", None, "the document is empty: not even a header line"),
        (
            b"order\tsku\tqty\n1\t2\t3\n",
            None,
            "the header lacks Order ID, Merchant SKU, Return request status: is this a returns report "
            "(GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE)? It starts 'order | sku | qty'",
        ),
    ],
)
async def test_an_unreadable_document_is_a_failed_import_with_its_reason(
    client: httpx.AsyncClient, runtime: Runtime, content: bytes, compression: str | None, error: str
) -> None:
    summary = await import_report(runtime, content, compression)
    assert (summary.status, summary.error, summary.lines) == ("failed", error, 0)
    # The failed import is recorded and frees the channel for the next one.
    assert (await import_report(runtime, HANDMADE)).status == "succeeded"

"""Amazon's returns report (`GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE`) read into outcome lines.

The document is tab-separated, one header line with Amazon's column names (as documented in
"Returns reports attributes" of the SP-API docs), then one line per returned SKU; Amazon leaves
out the empty fields at the end of a line. Nothing here raises on a bad line: it is counted and
explained. Only a document that cannot be read at all (not gzip, cut short, no usable header) is
refused as a whole, with the reason.
"""

from __future__ import annotations

import csv
import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from app.channels import AMAZON_ORDER_ID
from app.connectors.amazon_reports import RETURNS_REPORT
from app.services.outcomes import OutcomeStatus

# Amazon's documented columns, in their order.
COLUMNS = (
    "Order ID",
    "Order date",
    "Return request date",
    "Return request status",
    "Amazon RMA ID",
    "Merchant RMA ID",
    "Label type",
    "Label cost",
    "Currency code",
    "Return carrier",
    "Tracking ID",
    "Label to be paid by",
    "A-to-Z Claim",
    "Is prime",
    "ASIN",
    "Merchant SKU",
    "Item Name",
    "Return quantity",
    "Return Reason",
    "In policy",
    "Return type",
    "Resolution",
    "Invoice number",
    "Return delivery date",
    "Order Amount",
    "Order quantity",
    "SafeT Action reason",
    "SafeT claim id",
    "SafeT claim state",
    "SafeT claim creation time",
    "SafeT claim reimbursement amount",
    "Refunded Amount",
)
REQUIRED = ("Order ID", "Merchant SKU", "Return request status")
# A decompressed report larger than this is refused rather than read into memory.
MAX_BYTES = 256 * 1024 * 1024
MAX_PROBLEMS = 50  # explanations kept per import; the counts cover every line


class ReportUnreadable(ValueError):
    """The document cannot be read as a returns report at all."""


def _name(column: str) -> str:
    # Header cells compare without case, spaces or punctuation: "A-to-Z Claim" is "atozclaim".
    return re.sub(r"[^a-z0-9]", "", column.lower())


_KNOWN = {_name(column): column for column in COLUMNS}


@dataclass(frozen=True)
class ReportLine:
    order_id: str
    sku: str
    rma_id: str
    request_status: str
    resolution: str | None
    return_type: str | None
    return_reason: str | None
    requested_on: date | None
    delivered_on: date | None
    quantity: int | None
    in_policy: bool | None
    a_to_z_claim: bool
    refunded_amount: Decimal | None
    outcome: OutcomeStatus


@dataclass
class ParsedReport:
    lines: list[ReportLine] = field(default_factory=list)
    invalid: int = 0
    problems: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)

    def explain(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def document_text(content: bytes, compression: str | None) -> str:
    """The report's text: gunzipped when Amazon says it is compressed (or it starts as gzip does),
    decoded as UTF-8, else as Windows-1252 (Amazon's flat files of North America use either)."""
    if compression is not None and compression.upper() != "GZIP":
        raise ReportUnreadable(f"the document is compressed with {compression!r}, which is not gzip")
    if compression is not None or content[:2] == b"\x1f\x8b":
        content = gunzip(content)
    elif len(content) > MAX_BYTES:
        raise ReportUnreadable(f"the document is larger than {MAX_BYTES} bytes")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def gunzip(content: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(content, MAX_BYTES + 1)
    except zlib.error as error:
        raise ReportUnreadable(f"the document is not gzip ({error})") from error
    if len(data) > MAX_BYTES or inflater.unconsumed_tail:
        raise ReportUnreadable(f"the document inflates to more than {MAX_BYTES} bytes")
    if not inflater.eof:
        raise ReportUnreadable("the gzip document is cut short: its end is missing")
    return data


def parse(text: str) -> ParsedReport:
    """Every line of the report, read by the header's column names."""
    report = ParsedReport()
    records = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    while records and not any(cell.strip() for cell in records[0]):
        records.pop(0)
    if not records:
        raise ReportUnreadable("the document is empty: not even a header line")
    header = [cell.strip() for cell in records[0]]
    positions: dict[str, int] = {}
    for index, cell in enumerate(header):
        known = _KNOWN.get(_name(cell))
        if known is None:
            if cell:
                report.unknown_columns.append(cell)
        elif known not in positions:
            positions[known] = index
    missing = [column for column in REQUIRED if column not in positions]
    if missing:
        raise ReportUnreadable(
            f"the header lacks {', '.join(missing)}: is this a returns report "
            f"({RETURNS_REPORT})? It starts {' | '.join(header[:4])!r}"
        )
    if report.unknown_columns:
        report.explain(
            f"columns not in Amazon's documented list, ignored: {', '.join(report.unknown_columns)}"
        )
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
            report.invalid += 1
            report.explain(f"line {number}: {len(record)} fields under a header of {len(header)}")
            continue
        try:
            report.lines.append(_line(record, positions))
        except ValueError as error:
            report.invalid += 1
            report.explain(f"line {number}: {error}")
    return report


def _line(record: list[str], positions: dict[str, int]) -> ReportLine:
    def cell(column: str) -> str:
        index = positions.get(column)
        return record[index].strip() if index is not None and index < len(record) else ""

    order_id = cell("Order ID")
    if not AMAZON_ORDER_ID.match(order_id):
        raise ValueError(f"order id {order_id[:40]!r} is not an Amazon order id (3-7-7 digits)")
    sku = cell("Merchant SKU")
    if not sku:
        raise ValueError(f"order {order_id}: no Merchant SKU")
    status = cell("Return request status")
    if not status:
        raise ValueError(f"order {order_id}: no Return request status")
    resolution = cell("Resolution") or None
    refunded = _amount(cell("Refunded Amount"), "Refunded Amount")
    return ReportLine(
        order_id=order_id,
        sku=sku[:255],
        rma_id=cell("Amazon RMA ID")[:64],
        request_status=status[:64],
        resolution=resolution[:64] if resolution else None,
        return_type=(cell("Return type") or None),
        return_reason=(cell("Return Reason")[:64] or None),
        requested_on=_day(cell("Return request date"), "Return request date"),
        delivered_on=_day(cell("Return delivery date"), "Return delivery date"),
        quantity=_count(cell("Return quantity")),
        in_policy=_flag(cell("In policy")),
        a_to_z_claim=_flag(cell("A-to-Z Claim")) is True,
        refunded_amount=refunded,
        outcome=line_outcome(status, resolution, refunded),
    )


def line_outcome(status: str, resolution: str | None, refunded: Decimal | None) -> OutcomeStatus:
    """What one line says happened.

    Money refunded settles it (kept by the buyer when the resolution says returnless). Without
    money: a replacement completed is an exchange; a request rejected is declined; closed,
    cancelled or completed without a refund is closed without a return (Seller Central completes
    a request whose item never came back). Anything else (approved, authorised, pending) is open.
    """
    state, how = _name(status), _name(resolution or "")
    if refunded is not None and refunded > 0:
        return OutcomeStatus.kept_returnless if "returnless" in how else OutcomeStatus.refunded
    if "replacement" in how and state in ("completed", "closed"):
        return OutcomeStatus.exchanged
    if any(word in state for word in ("reject", "denied", "declined")):
        return OutcomeStatus.declined
    if state in ("closed", "cancelled", "canceled", "completed"):
        return OutcomeStatus.closed_without_return
    return OutcomeStatus.open


_DAY_FORMATS = ("%d-%b-%Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")


def _day(text: str, column: str) -> date | None:
    if not text:
        return None
    for form in _DAY_FORMATS:
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"{column} {text[:40]!r} is not a date") from None


def _amount(text: str, column: str) -> Decimal | None:
    if not text:
        return None
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{column} {text[:40]!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{column} {text[:40]!r} is not an amount")
    return amount


def _count(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _flag(text: str) -> bool | None:
    value = text.lower()
    if value in ("y", "yes", "true"):
        return True
    if value in ("n", "no", "false"):
        return False
    return None

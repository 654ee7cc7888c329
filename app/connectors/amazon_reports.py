"""Amazon's Reports API 2021-06-30: the returns report, requested, waited for and downloaded.

`createReport`, then `getReport` until Amazon is done, then `getReportDocument` for a pre-signed
URL, then the document itself (gzip when `compressionAlgorithm` says so). Each operation waits
for a token of its own bucket, shared by every process of the seller account like `getOrder`'s,
at the rates of Amazon's published usage plans (in the vendored model). Reads are retried on
throttling, 5xx and timeouts; `createReport` is retried the same way: a duplicate report costs
one request of the quota and changes nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from app.channels import AmazonChannel, Channel
from app.connectors.amazon_auth import AccessTokens
from app.connectors.base import retry_after, transport_error
from app.connectors.calls import recorded_call
from app.connectors.ratelimit import Buckets, Limit, RateLimiter
from app.connectors.retry import RetryPolicy, with_retries
from app.connectors.sp_api import SellerAccounts, access_tokens, refused
from app.errors import UpstreamBadResponse, UpstreamError, UpstreamUnavailable

UPSTREAM = "Amazon SP-API Reports"
REPORTS = "/reports/2021-06-30/reports"
DOCUMENTS = "/reports/2021-06-30/documents"
RETURNS_REPORT = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
MAX_DOCUMENT_BYTES = 128 * 1024 * 1024  # compressed or not, as downloaded
# The usage plans of reports_2021-06-30.json: requests per second and burst, per seller account.
LIMITS = {
    "createReport": Limit(rate=0.0167, burst=15),
    "getReport": Limit(rate=2.0, burst=15),
    "getReportDocument": Limit(rate=0.0167, burst=15),
}
RETRY = RetryPolicy(attempts=5, base_delay=1.0, max_delay=30.0, max_retry_after=120.0)


class ReportFailed(Exception):
    """Amazon could not produce the report (FATAL), or it took longer than the service waits."""


@dataclass(frozen=True)
class ReportDocument:
    report_id: str
    content: bytes | None  # None when Amazon had no data (the report was CANCELLED)
    compression: str | None


class AmazonReports:
    """The Reports API for one Amazon channel with live credentials."""

    def __init__(
        self,
        channel: AmazonChannel,
        http: httpx.AsyncClient,
        *,
        tokens: AccessTokens,
        limiters: dict[str, RateLimiter],
        retry: RetryPolicy = RETRY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_every: float = 30.0,
        max_wait: float = 3600.0,
    ) -> None:
        self.channel = channel
        self._http = http
        self._tokens = tokens
        self._limiters = limiters
        self._retry = retry
        self._sleep = sleep
        self._poll_every = poll_every
        self._max_wait = max_wait
        self._base = channel.endpoint.rstrip("/")
        self._label = f"{channel.key}.reports"

    @classmethod
    def build(
        cls,
        channel: AmazonChannel,
        http: httpx.AsyncClient,
        *,
        buckets: Buckets,
        max_wait: float = 300.0,
        tokens: AccessTokens | None = None,
    ) -> AmazonReports:
        """The Reports API of `channel`; `tokens` its seller account's (see `SellerAccounts`)."""
        tokens = tokens or access_tokens(channel, http)
        account = channel.seller_account
        limiters = {
            operation: RateLimiter(
                buckets,
                f"amazon:{account}:{operation}",
                limit,
                max_wait=max_wait,
                upstream=f"Amazon SP-API {operation}",
                label=f"{channel.key}.{operation}",
            )
            for operation, limit in LIMITS.items()
        }
        return cls(channel, http, tokens=tokens, limiters=limiters)

    async def returns_report(self, start: datetime, end: datetime) -> ReportDocument:
        """The returns report of `start`..`end`, downloaded (not yet decompressed)."""
        report_id = await self.create_report(RETURNS_REPORT, start, end)
        document_id = await self.wait_for(report_id)
        if document_id is None:
            return ReportDocument(report_id=report_id, content=None, compression=None)
        url, compression = await self.document(document_id)
        return ReportDocument(report_id=report_id, content=await self.download(url), compression=compression)

    async def create_report(self, report_type: str, start: datetime, end: datetime) -> str:
        body = {
            "reportType": report_type,
            "marketplaceIds": [self.channel.marketplace_id],
            "dataStartTime": start.isoformat(),
            "dataEndTime": end.isoformat(),
        }
        answer = await self._call("createReport", "POST", REPORTS, body, ok=(202,))
        report_id = answer.get("reportId")
        if not isinstance(report_id, str) or not report_id:
            raise UpstreamBadResponse(f"{UPSTREAM} createReport answered without a reportId")
        return report_id

    async def wait_for(self, report_id: str) -> str | None:
        """The report's document id once Amazon is done; None when it was cancelled (no data)."""
        waited = 0.0
        while True:
            report = await self._call("getReport", "GET", f"{REPORTS}/{quote(report_id, safe='')}")
            status = report.get("processingStatus")
            if status == "DONE":
                document_id = report.get("reportDocumentId")
                if not isinstance(document_id, str) or not document_id:
                    raise UpstreamBadResponse(f"{UPSTREAM} report {report_id} is DONE without a document")
                return document_id
            if status == "CANCELLED":
                return None
            if status == "FATAL":
                raise ReportFailed(f"Amazon could not produce report {report_id} (FATAL).")
            if status not in ("IN_QUEUE", "IN_PROGRESS"):
                raise UpstreamBadResponse(f"{UPSTREAM} report {report_id} has status {status!r}")
            if waited >= self._max_wait:
                raise ReportFailed(f"Report {report_id} was not done after {self._max_wait:g} s.")
            await self._sleep(self._poll_every)
            waited += self._poll_every

    async def document(self, document_id: str) -> tuple[str, str | None]:
        answer = await self._call("getReportDocument", "GET", f"{DOCUMENTS}/{quote(document_id, safe='')}")
        url, compression = answer.get("url"), answer.get("compressionAlgorithm")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise UpstreamBadResponse(f"{UPSTREAM} getReportDocument answered without an https url")
        if compression is not None and not isinstance(compression, str):
            raise UpstreamBadResponse(f"{UPSTREAM} getReportDocument: compressionAlgorithm is not text")
        return url, compression

    async def download(self, url: str) -> bytes:
        """The document from its pre-signed URL (no SP-API token: the URL is the credential)."""

        async def fetch() -> bytes:
            async with recorded_call(f"{self.channel.key}.report_document"):
                try:
                    async with self._http.stream("GET", url, timeout=DOWNLOAD_TIMEOUT) as response:
                        if response.status_code != 200:
                            raise _download_refused(response)
                        content = bytearray()
                        async for chunk in response.aiter_bytes():
                            content += chunk
                            if len(content) > MAX_DOCUMENT_BYTES:
                                raise UpstreamBadResponse(
                                    f"the report document is larger than {MAX_DOCUMENT_BYTES} bytes"
                                )
                        return bytes(content)
                except httpx.TransportError as error:
                    raise transport_error(error, "the report document") from error

        return await with_retries(fetch, self._retry, upstream=self._label, sleep=self._sleep)

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        async def once() -> dict[str, Any]:
            token = await self._tokens.current()
            limiter = self._limiters[operation]
            await limiter.acquire()
            async with recorded_call(f"{self.channel.key}.{operation}"):
                try:
                    response = await self._http.request(
                        method,
                        self._base + path,
                        json=body,
                        headers={"x-amz-access-token": token, "accept": "application/json"},
                        timeout=TIMEOUT,
                    )
                except httpx.TransportError as error:
                    raise transport_error(error, f"{UPSTREAM} {operation}") from error
                if response.status_code in ok:
                    return _json(response, operation)
                said = f"{UPSTREAM} {operation} answered {response.status_code}"
                raise await refused(response, said, tokens=self._tokens, token=token, limiter=limiter)

        return await with_retries(once, self._retry, upstream=self._label, sleep=self._sleep)


def _download_refused(response: httpx.Response) -> UpstreamError:
    """The document comes from a presigned URL, not the SP-API: no token or bucket of ours is at stake."""
    said = f"the report document answered {response.status_code}"
    if response.status_code >= 500:
        return UpstreamUnavailable(said, retry_after=retry_after(response))
    return UpstreamBadResponse(said)  # an expired URL (403) too: the next run asks for a new one


def _json(response: httpx.Response, operation: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise UpstreamBadResponse(f"{UPSTREAM} {operation} answered something that is not JSON") from error
    if not isinstance(body, dict):
        raise UpstreamBadResponse(f"{UPSTREAM} {operation} answered JSON that is not an object")
    return body


def reports_for(
    channels: Mapping[str, Channel],
    http: httpx.AsyncClient,
    buckets: Buckets,
    accounts: SellerAccounts | None = None,
) -> dict[str, AmazonReports]:
    """The Reports API of each live Amazon channel, its rate limits in `buckets` (see
    `registry.shared_buckets`)."""
    accounts = accounts or SellerAccounts(http)
    return {
        key: AmazonReports.build(channel, http, buckets=buckets, tokens=accounts.tokens(channel))
        for key, channel in channels.items()
        if isinstance(channel, AmazonChannel) and channel.live
    }

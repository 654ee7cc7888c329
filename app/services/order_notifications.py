"""Amazon's ORDER_CHANGE notifications, read from Amazon SQS by the worker: each marks the order it names
stale in its seller account's mirror, so lookups ask getOrder until a newer copy comes in.

A message is deleted only once what it says is committed. A message that is not an ORDER_CHANGE, not
valid against Amazon's schema, or for a seller no channel on the queue has, is counted and dropped
without touching the mirror. One that keeps failing is kept aside in the database after
`max_receives` receipts (counted), then deleted. A repeated or overtaken notification changes nothing:
the mirror keeps the latest change it was told of.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from jsonschema import Draft7Validator

from app import metrics
from app.channels import AMAZON_ORDER_ID
from app.connectors.payload import aware_moment
from app.db import mirror as rows
from app.db.database import Database, described
from app.services.mirror import SellerAccount
from app.services.stopping import pause, unless_stopped
from app.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.type_defs import MessageTypeDef

log = structlog.get_logger(__name__)

MAX_RECEIVES = 5  # receipts of one message before it is kept aside
LONG_POLL_SECONDS = 20  # the most SQS allows
MAX_BACKOFF = 60.0  # seconds between polls of a queue that keeps failing
# What an ORDER_CHANGE says of the buyer; never stored, even in a message kept aside.
_BUYER_FIELDS = frozenset({"DestinationPostalCode"})


@cache
def order_change_schema() -> Draft7Validator:
    """Amazon's JSON Schema of ORDER_CHANGE, shipped in the package (see amazon_schemas/README.md)."""
    text = files("app.connectors").joinpath("amazon_schemas", "OrderChangeNotification.json").read_text()
    return Draft7Validator(json.loads(text))


@dataclass(frozen=True)
class OrderChange:
    account: SellerAccount
    order_id: str
    changed_at: datetime


def sqs_client(settings: Settings, queue_url: str) -> AbstractAsyncContextManager[SQSClient]:
    """An async Amazon SQS client from the standard AWS settings (unset ones: boto's usual chain)."""
    secret = settings.aws_secret_access_key
    client: AbstractAsyncContextManager[SQSClient] = get_session().create_client(
        "sqs",
        region_name=settings.aws_region or region_of(queue_url) or "us-east-1",
        endpoint_url=settings.aws_endpoint_url_sqs,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        # A long poll holds the connection for up to 20 s; a queue that cannot be reached is tried a
        # few times, then the loop's own backoff takes over.
        config=AioConfig(
            connect_timeout=5,
            read_timeout=LONG_POLL_SECONDS + 10,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )
    return client


def region_of(queue_url: str) -> str | None:
    match = re.match(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com", queue_url)
    return match.group(1) if match else None


class OrderNotifications:
    """The consumer of one ORDER_CHANGE queue, for the seller accounts whose channels name it."""

    def __init__(
        self,
        database: Database,
        queue_url: str,
        accounts: Sequence[SellerAccount],
        client: Callable[[], AbstractAsyncContextManager[SQSClient]],
        *,
        max_receives: int = MAX_RECEIVES,
        wait_seconds: int = LONG_POLL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self.queue_url = queue_url
        self._by_seller: dict[str, SellerAccount] = {}
        for account in accounts:
            if account.seller_id is None:
                raise ValueError(
                    f"channel {account.name} reads ORDER_CHANGE notifications but has no SELLER_ID "
                    f"(CHANNEL_{account.name.upper()}_SELLER_ID): its notifications cannot be told apart"
                )
            self._by_seller[account.seller_id] = account
        self.open_client = client  # a new SQS client, to use as `async with`
        self._max_receives = max_receives
        self._wait = wait_seconds
        self._clock = clock
        self._log = log.bind(queue=queue_url)

    async def run(self, stop: asyncio.Event) -> None:
        """Long-poll the queue until `stop` is set; a poll in flight is abandoned (SQS keeps the messages)."""
        self._log.info("notifications_started")
        failures = 0
        async with self.open_client() as client:
            while not stop.is_set():
                receive = await unless_stopped(stop, self.receive(client))
                if receive is None:
                    break
                try:
                    messages = receive.result()
                except Exception as error:  # noqa: BLE001 - SQS unreachable or refusing: poll again later
                    failures += 1
                    wait = min(MAX_BACKOFF, 2.0 ** (failures - 1))
                    metrics.record_notification_receive_failure()
                    self._log.warning("notifications_receive_failed", error=type(error).__name__, wait=wait)
                    await pause(stop, wait)
                    continue
                failures = 0
                for message in messages:
                    await self.handle(client, message)
        self._log.info("notifications_stopped")

    async def receive(self, client: SQSClient) -> list[MessageTypeDef]:
        answer = await client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._wait,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return answer.get("Messages", [])

    async def handle(self, client: SQSClient, message: MessageTypeDef) -> str:
        """Apply one message and delete it once that is committed; answers what became of it."""
        outcome = await self._apply(message)
        if outcome != "failed":
            try:
                await client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            except Exception as error:  # noqa: BLE001 - it comes back, and changes nothing a second time
                self._log.warning("notification_not_deleted", error=type(error).__name__)
        metrics.record_notification(outcome)
        return outcome

    async def _apply(self, message: MessageTypeDef) -> str:
        message_id = message.get("MessageId", "")
        change = self.read(message.get("Body", ""), message_id)
        if isinstance(change, str):
            return change
        try:
            async with self._database.transaction() as session:
                stale = await rows.note_change(
                    session, change.account.key, change.order_id, change.changed_at, self._clock()
                )
        except Exception as error:  # noqa: BLE001 - retried by SQS, then kept aside
            return await self._failed(message, change, error)
        if stale is None:
            return "duplicate"  # a change as new was known already: nothing was written
        return "marked_stale" if stale else "already_current"

    def read(self, body: str, message_id: str = "") -> OrderChange | str:
        """The change a message announces, or why it is dropped: `malformed`, `other_type`,
        `foreign_seller`."""
        dropped = self._log.bind(message_id=message_id)
        try:
            document = json.loads(body)
        except ValueError:
            dropped.info("notification_dropped", why="not JSON")
            return "malformed"
        kind = document.get("NotificationType") if isinstance(document, dict) else None
        if isinstance(kind, str) and kind != "ORDER_CHANGE":
            dropped.info("notification_dropped", why="another notification type", type=kind[:64])
            return "other_type"
        error = next(iter(sorted(order_change_schema().iter_errors(document), key=str)), None)
        if error is not None:
            # The path and the rule broken, never the value: it may be the buyer's.
            dropped.info(
                "notification_dropped", why="not an ORDER_CHANGE", at=error.json_path, rule=error.validator
            )
            return "malformed"
        change = document["Payload"]["OrderChangeNotification"]
        account = self._by_seller.get(change["SellerId"])
        if account is None:
            dropped.info("notification_dropped", why="another seller")
            return "foreign_seller"
        order_id = change["AmazonOrderId"]
        changed_at = aware_moment(change["OrderChangeTrigger"]["TimeOfOrderChange"]) or aware_moment(
            document["EventTime"]
        )
        if not AMAZON_ORDER_ID.match(order_id) or changed_at is None:
            dropped.info("notification_dropped", why="no order id or time the service can read")
            return "malformed"
        return OrderChange(account=account, order_id=order_id, changed_at=changed_at)

    async def _failed(self, message: MessageTypeDef, change: OrderChange, error: Exception) -> str:
        receipts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        failing = self._log.bind(message_id=message.get("MessageId"), receipts=receipts)
        if receipts < self._max_receives:
            failing.warning("notification_failed", error=type(error).__name__)
            return "failed"
        try:
            async with self._database.transaction() as session:
                await rows.keep_aside(
                    session,
                    {
                        "message_id": message.get("MessageId", "")[:128],
                        "queue": self.queue_url[:1024],
                        "account": change.account.key,
                        "order_id": change.order_id,
                        "receive_count": receipts,
                        # What a database error's message quotes (order rows) is not kept.
                        "error": described(error)[:2000],
                        "body": _without_buyer(json.loads(message.get("Body", "null"))),
                        "kept_at": self._clock(),
                    },
                )
        except Exception as keeping:  # noqa: BLE001 - the database is the trouble: SQS keeps it meanwhile
            failing.warning("notification_failed", error=type(error).__name__, kept=type(keeping).__name__)
            return "failed"
        failing.error("notification_kept_aside", error=type(error).__name__)
        return "kept_aside"


def _without_buyer(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_buyer(item) for key, item in value.items() if key not in _BUYER_FIELDS}
    if isinstance(value, list):
        return [_without_buyer(item) for item in value]
    return value

"""A local SQS-compatible server for the ORDER_CHANGE tests: moto's server mode, a process of its own on
127.0.0.1 and a free port, spoken to over HTTP by the real AWS client (aiobotocore), as Amazon SQS is.

Also the messages the tests put on a queue: Amazon's published ORDER_CHANGE example, re-aimed.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.services.order_notifications import sqs_client
from app.settings import Settings

EXAMPLE: dict[str, Any] = json.loads(
    (
        Path(__file__).parent / "fixtures" / "published" / "amazon" / "OrderChangeNotification.example.json"
    ).read_text(encoding="utf-8")
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_sqs() -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, until the block ends; yields its endpoint."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"moto_server exited with {server.returncode}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """moto's server, started for the test session and stopped after it."""
    with running_sqs() as endpoint:
        yield endpoint


def aws_settings(endpoint: str, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        aws_region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key=SecretStr("testing"),
        aws_endpoint_url_sqs=endpoint,
        **overrides,
    )


@pytest.fixture
async def queue_url(sqs_endpoint: str) -> AsyncIterator[str]:
    """A queue of this test alone; messages come back at once when not deleted (no visibility wait)."""
    url = await create_queue(sqs_endpoint)
    yield url
    async with sqs_client(aws_settings(sqs_endpoint), url) as client:
        await client.delete_queue(QueueUrl=url)


async def create_queue(endpoint: str, visibility_timeout: int = 0) -> str:
    async with sqs_client(aws_settings(endpoint), "") as client:
        created = await client.create_queue(
            QueueName=f"order-change-{uuid.uuid4().hex[:12]}",
            Attributes={"VisibilityTimeout": str(visibility_timeout)},
        )
    return created["QueueUrl"]


def client_factory(endpoint: str, queue: str) -> Any:
    return partial(sqs_client, aws_settings(endpoint), queue)


def order_change(
    order_id: str,
    changed_at: datetime | None,
    *,
    seller_id: str = "A3TH9S8BH6GOGM",
    status: str = "Shipped",
    event_time: str = "2026-11-30T12:00:00.000Z",
) -> dict[str, Any]:
    """Amazon's ORDER_CHANGE example about another order, seller and moment."""
    message = copy.deepcopy(EXAMPLE)
    change = message["Payload"]["OrderChangeNotification"]
    change["AmazonOrderId"] = order_id
    change["SellerId"] = seller_id
    change["OrderChangeType"] = "OrderStatusChange"
    change["OrderChangeTrigger"]["TimeOfOrderChange"] = changed_at.isoformat() if changed_at else None
    change["Summary"]["OrderStatus"] = status
    message["EventTime"] = event_time
    message["NotificationMetadata"]["NotificationId"] = str(uuid.uuid4())
    return message


async def send(endpoint: str, queue: str, body: str | dict[str, Any]) -> None:
    async with sqs_client(aws_settings(endpoint), queue) as client:
        await client.send_message(
            QueueUrl=queue, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )


async def messages_left(endpoint: str, queue: str) -> int:
    """Messages on the queue, visible or in flight."""
    async with sqs_client(aws_settings(endpoint), queue) as client:
        answer = await client.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    attributes = answer["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )

"""One worker process of the shared-bucket test: resolves orders through the registry's Amazon
connector, sharing its bucket through Redis, for SECONDS; prints what it did as JSON.

    python -m tests.connectors.bucket_worker REDIS_URL STANDIN_URL CLIENT_ID SECONDS RATE BURST

It prints `ready` once connected and starts when it reads a line on its standard input, so that
the test starts every worker at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from app.channels import AmazonChannel
from app.connectors.registry import Connectors
from app.errors import UpstreamRateLimited

CONCURRENCY = 8


async def work(
    redis_url: str, standin: str, client_id: str, seconds: float, limit: tuple[float, int]
) -> None:
    channel = AmazonChannel(
        key="amazon_us",
        timezone="America/Los_Angeles",
        currency="USD",
        marketplace_id="ATVPDKIKX0DER",
        endpoint=standin,
        lwa_token_url=standin + "/auth/o2/token",
        lwa_client_id=client_id,
        lwa_client_secret=SecretStr("secret"),
        refresh_token=SecretStr("Atzr|shared-seller"),
        get_order_rate=limit[0],
        get_order_burst=limit[1],
    )
    done = refused = 0
    async with httpx.AsyncClient() as http, Redis.from_url(redis_url) as redis:
        connectors = Connectors.for_channels(
            {channel.key: channel}, http=http, redis=redis, max_wait=0.5, order_max_age=0.0
        )
        source = connectors.source(channel.key)
        await redis.ping()
        print("ready", flush=True)  # noqa: T201 - the parent waits for it
        await asyncio.to_thread(sys.stdin.readline)
        end = time.monotonic() + seconds

        async def hammer(lane: int) -> None:
            nonlocal done, refused
            n = 0
            while time.monotonic() < end:
                n += 1
                try:
                    await source.resolve_order(f"{os.getpid() % 1000:03d}-{lane:07d}-{n:07d}")
                    done += 1
                except UpstreamRateLimited:
                    refused += 1
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(hammer(lane) for lane in range(CONCURRENCY)))
    print(json.dumps({"done": done, "refused": refused}))  # noqa: T201 - the parent reads it


if __name__ == "__main__":
    redis_url, standin, client_id, seconds, rate, burst = sys.argv[1:7]
    asyncio.run(work(redis_url, standin, client_id, float(seconds), (float(rate), int(burst))))

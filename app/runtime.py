"""What the lifespan owns: the database, the HTTP client, Redis, the connectors, the policies, and the
services built on them. The routers and the worker take each piece through a narrow dependency;
no service receives this whole object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from redis.asyncio import Redis

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.connectors.amazon_reports import AmazonReports, reports_for
from app.connectors.ratelimit import Buckets
from app.connectors.registry import Connectors, shared_buckets
from app.connectors.sp_api import SellerAccounts
from app.connectors.transport import AiohttpTransport
from app.db.database import Database
from app.db.engine import open_database
from app.policy import PolicyBook
from app.policy.book import AMAZON_POLICIES
from app.services.actions import Actions
from app.services.api_keys import Authenticator
from app.services.idempotency import Idempotency
from app.services.mirror import MirroredOrders, seller_accounts
from app.services.returns import Routing
from app.services.webhooks.handlers import Handler
from app.services.webhooks.registry import handlers
from app.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    channels: Mapping[str, Channel]  # built once from the settings
    database: Database
    http: httpx.AsyncClient
    redis: Redis | None
    connectors: Connectors
    idempotency: Idempotency
    api_keys: Authenticator
    routing: Routing
    actions: Actions
    handlers: Mapping[str, Handler]  # the worker's, by topic
    reports: Mapping[str, AmazonReports]  # Amazon's Reports API, by live Amazon channel
    accounts: SellerAccounts  # each Amazon seller account's access token
    buckets: Buckets  # every upstream's rate limits (shared through Redis when there is one)


def load_policy_book(settings: Settings, channels: Mapping[str, Channel] | None = None) -> PolicyBook:
    """Every policy file the channels name, checked, and each channel checked against its policy.

    Raises `ChannelConfigError` for a channel that is configured wrong, `PolicyFileError` on the first
    bad policy file.
    """
    channels = settings.channels if channels is None else channels
    book = PolicyBook.load(
        {
            key: channel.policy_file
            for key, channel in channels.items()
            if isinstance(channel, ShopifyChannel) and channel.policy_file is not None
        },
        amazon_files=[
            *AMAZON_POLICIES,
            *(
                channel.policy_file
                for channel in channels.values()
                if isinstance(channel, AmazonChannel) and channel.policy_file is not None
            ),
        ],
        routing_file=settings.routing_file,
    )
    for key, channel in channels.items():
        book.check(channel.market, source=f"channel {key}")
    return book


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    # Channels and policies first: a bad channel or policy file stops start-up before anything is
    # opened. The channels are built once, here: every service takes them from the runtime.
    channels = settings.channels
    policy = load_policy_book(settings, channels)
    async with AsyncExitStack() as stack:
        # Neither client connects before its first use.
        http = await stack.enter_async_context(open_http_client(settings))
        redis = (
            await stack.enter_async_context(Redis.from_url(settings.redis_url))
            if settings.redis_url
            else None
        )
        database = open_database(settings.database_url, settings.database_timeouts)
        stack.push_async_callback(database.dispose)
        mirrors = {
            account.key: MirroredOrders(database, account, max_age=settings.mirror_max_age_seconds)
            for account in seller_accounts(channels)
        }
        # One Login with Amazon token per seller account, for getOrder, searchOrders and reports.
        accounts = SellerAccounts(http)
        buckets = shared_buckets(redis)
        connectors = Connectors.for_channels(
            channels,
            http=http,
            redis=redis,
            max_wait=settings.upstream_max_wait_seconds,
            order_max_age=settings.order_cache_max_age_seconds,
            mirrors=mirrors,
            accounts=accounts,
            buckets=buckets,
        )
        idempotency = Idempotency(database, timedelta(hours=settings.idempotency_ttl_hours))
        routing = Routing(
            orders=connectors,
            policy=policy,
            markets={key: channel.market for key, channel in channels.items()},
            database=database,
            idempotency=idempotency,
        )
        actions = Actions(database, connectors)
        yield Runtime(
            settings=settings,
            channels=channels,
            database=database,
            http=http,
            redis=redis,
            connectors=connectors,
            idempotency=idempotency,
            api_keys=Authenticator(database, settings.api_key_cache_seconds),
            routing=routing,
            actions=actions,
            handlers=handlers(routing, actions, connectors),
            reports=reports_for(channels, http, buckets, accounts),
            accounts=accounts,
            buckets=buckets,
        )


def open_http_client(settings: Settings) -> httpx.AsyncClient:
    """The client every connector shares: httpx's API, on aiohttp's connections by default.

    Measured by bench/outbound.py, httpx's own transport (httpcore) costs about ten times the CPU
    per call under concurrency. `HTTP_TRANSPORT=httpx` keeps httpcore, which is what respx mocks:
    the test suite runs on it.
    """
    timeout = httpx.Timeout(10.0, connect=5.0)
    if settings.http_transport == "aiohttp":
        return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport())
    return httpx.AsyncClient(timeout=timeout)

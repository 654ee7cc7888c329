"""Cost of one claim and release of a lookup in Redis: the owner-checked lock against a bare SET/DEL.

    .venv/bin/python bench/lookup_claims.py [--redis-url redis://127.0.0.1:6379/0] [--cycles 5000]

Each cycle claims a key and releases it, one at a time over one connection, as `Lookups` does on a
cache miss; best of five runs, microseconds per cycle. The bare pair is what the claim was before it
checked its owner: its release deleted whatever claim was there.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from redis.asyncio import Redis

from app.connectors.lookups import RedisCache


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cycles", type=int, default=5000)
    args = parser.parse_args()
    prefix = f"bench-claims:{uuid.uuid4().hex[:8]}:"
    async with Redis.from_url(args.redis_url) as redis:
        cache = RedisCache(redis, prefix)

        async def owner_checked() -> None:
            claim = await cache.claim("k", 30.0)
            assert claim is not None
            await claim.release()

        async def bare() -> None:
            assert await redis.set(f"{prefix}bare:k", b"1", nx=True, px=30_000)
            await redis.delete(f"{prefix}bare:k")

        results: dict[str, list[float]] = {"owner-checked lock": [], "bare SET NX / DEL": []}
        for _ in range(5):  # interleaved, so a busy moment of the machine touches both
            for name, cycle in (("owner-checked lock", owner_checked), ("bare SET NX / DEL", bare)):
                started = time.perf_counter()
                for _ in range(args.cycles):
                    await cycle()
                results[name].append((time.perf_counter() - started) / args.cycles * 1e6)
    for name, runs in results.items():
        print(
            f"{name:<20} {min(runs):7.1f} µs per claim and release (best of 5; median {sorted(runs)[2]:.1f})"
        )


if __name__ == "__main__":
    asyncio.run(main())

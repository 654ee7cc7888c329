"""What the benchmarks share: a free loopback port, the API as a subprocess, and percentiles."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(command: list[str], env: Mapping[str, str], ready_url: str | None = None) -> Iterator[None]:
    """`python -m app <command>` as a subprocess, stopped with SIGTERM at the end."""
    process = subprocess.Popen([sys.executable, "-m", "app", *command], cwd=ROOT, env={**os.environ, **env})
    try:
        if ready_url is not None:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited with {process.returncode}")
                try:
                    if httpx.get(ready_url, timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} did not become ready")
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary(latencies_ms: list[float]) -> str:
    ordered = sorted(latencies_ms)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return (
        f"n={len(ordered)} p50={at(0.50):.1f} ms p90={at(0.90):.1f} ms p99={at(0.99):.1f} ms "
        f"max={ordered[-1]:.1f} ms mean={statistics.fmean(ordered):.1f} ms"
    )

"""Throughput and latency of `POST /v1/returns/route` against a reference doing only the irreducible part.

    .venv/bin/python bench/route.py [--rounds 3] [--duration 10] [--workers 1 2] [--connections 64]

Starts the service as production runs it (`python -m app serve`: uvicorn with uvloop and httptools,
on PostgreSQL) in a database of its own, created and dropped here, on the sandbox channels (the
orders are fixtures, so they are as warm as a cached order), and `bench/reference.py` beside it (same
request model, one raw asyncpg INSERT of the same row, same answer). For each worker count it drives
one, then the other, with wrk on 127.0.0.1 for a bounded time, `--rounds` times, and prints
requests/s, p50, p99 and the server's CPU per request of every run, then the median ratio
route/reference over the rounds, with its range. Alternating in rounds is what makes the ratio
usable on a shared machine: a burst of load from elsewhere spoils one round, not the median. It
checks that every answered decision was committed. About 3 minutes with the defaults.

Needs wrk (Debian: `apt-get install -y wrk`) and PostgreSQL at --database-url (default: the local
test server). Absolute figures depend on the machine and its load; compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.domain import EXAMPLE_RETURN_REQUEST

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BODY = EXAMPLE_RETURN_REQUEST  # the contract's example, as the OpenAPI document shows it

LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}
"""


@dataclass
class Result:
    name: str
    workers: int
    round: int
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: str
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_cpu_seconds(session_id: int) -> float:
    """User+system CPU of every live process in a session (the server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12)
        if int(fields[3]) == session_id:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout}s")


def start(
    command: list[str], env: dict[str, str], ready_url: str, log: Path, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the server's log lines, as production would ship them
        process = subprocess.Popen(
            command, cwd=root, env={**os.environ, **env}, start_new_session=True, stdout=output, stderr=output
        )
    wait_ready(ready_url, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def post(url: str, authorization: str) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(BODY).encode(),
        headers={"Content-Type": "application/json", "Authorization": authorization},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status
        answer: dict[str, object] = json.loads(response.read())
        return answer


def wrk(url: str, script: Path, seconds: int, connections: int, threads: int) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr}")
    return done.stdout


def milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    name: str,
    workers: int,
    process: subprocess.Popen[bytes],
    url: str,
    script: Path,
    args: argparse.Namespace,
    round_number: int = 1,
) -> Result:
    wrk(url, script, args.warmup, args.connections, args.threads)  # warm the pools and the code paths
    cpu_before = session_cpu_seconds(process.pid)
    out = wrk(url, script, args.duration, args.connections, args.threads)
    cpu = session_cpu_seconds(process.pid) - cpu_before
    done = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    assert done is not None, out
    requests, seconds = int(done[1]), float(done[2]) * (60 if done[3] == "m" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    assert p50 is not None, out
    assert p99 is not None, out
    return Result(
        name=name,
        workers=workers,
        round=round_number,
        requests=requests,
        seconds=seconds,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=errors[1] if errors else "none",
        p50_ms=milliseconds(p50[1]),
        p99_ms=milliseconds(p99[1]),
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
    )


def measure_route(
    process: subprocess.Popen[bytes],
    base: str,
    workers: int,
    round_number: int,
    dsn: str,
    script: Path,
    args: argparse.Namespace,
) -> Result:
    """One measurement of the route, checking that every decision it answered was committed."""
    before = int(str(asyncio.run(fetch_value(dsn, "SELECT count(*) FROM decisions"))))
    profiler = None
    if args.profile and workers == 1 and round_number == 1:
        py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        profiler = subprocess.Popen(
            [py_spy, "record", "--pid", str(process.pid), "--format", "raw", "--rate", "200",
             "--duration", str(args.warmup + args.duration), "--output", str(args.profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    result = measure("route", workers, process, f"{base}/v1/returns/route", script, args, round_number)
    if profiler is not None:
        profiler.wait(timeout=30)
    stored = int(str(asyncio.run(fetch_value(dsn, "SELECT count(*) FROM decisions")))) - before
    answered = result.requests - result.non_2xx
    print(
        f"route, {workers} worker(s), round {round_number}: {stored} decisions committed, "
        f"at least the {answered} answered in the measured run (plus warm-up)",
        file=sys.stderr,
    )
    assert result.non_2xx == 0, f"{result.non_2xx} non-2xx answers from the route"
    assert stored >= answered, "a decision was answered but not committed"
    return result


async def create_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def fetch_value(dsn: str, query: str, *params: object) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *params)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="route then reference, this many times per worker count"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="the checkout to serve (e.g. `git archive` of an older commit)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the 1-worker route run with py-spy (collapsed stacks) into this file",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`")

    name = f"returns_router_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = args.database_url
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    asyncio.run(create_database(admin_dsn, name))
    work = Path(tempfile.mkdtemp(prefix="bench-route-"))
    results: list[Result] = []
    try:
        env = {
            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            "LOG_LEVEL": "INFO",  # production's: one access line per request
            "LOG_FORMAT": "json",
        }
        issued = subprocess.run(
            [PYTHON, "-m", "app", "keys", "create", "--name", "bench", "--scope", "route"],
            cwd=args.root, env={**os.environ, **env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = issued.stdout.strip().splitlines()[-1]
        key_id = key.removeprefix("rr_")[:12]
        authorization = f"Bearer {key}"
        script = work / "post.lua"
        script.write_text(
            LUA.format(body=json.dumps(json.dumps(BODY)), authorization=json.dumps(authorization))
        )
        sample = work / "sample.json"

        for workers in args.workers:
            route_port, reference_port = free_port(), free_port()
            route_url = f"http://127.0.0.1:{route_port}"
            serve = [PYTHON, "-m", "app", "serve", "--port", str(route_port), "--workers", str(workers)]
            route_process = start(serve, env, f"{route_url}/readyz", work / "route.log", args.root)
            reference_process = None
            try:
                if not sample.exists():
                    answer = post(f"{route_url}/v1/returns/route", authorization)
                    snapshot = asyncio.run(
                        fetch_value(dsn, "SELECT order_snapshot::text FROM decisions WHERE id = $1",
                                    uuid.UUID(str(answer["decision_id"])))
                    )  # fmt: skip
                    sample.write_text(
                        json.dumps({"answer": answer, "order_snapshot": json.loads(str(snapshot))})
                    )
                reference = [
                    PYTHON, "-m", "uvicorn", "bench.reference:app",
                    "--port", str(reference_port), "--workers", str(workers),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
                ]  # fmt: skip
                reference_env = {
                    "REFERENCE_DATABASE_URL": dsn,
                    "REFERENCE_SAMPLE": str(sample),
                    "REFERENCE_API_KEY_ID": key_id,
                }
                reference_url = f"http://127.0.0.1:{reference_port}"
                reference_process = start(
                    reference, reference_env, f"{reference_url}/docs", work / "reference.log"
                )
                # Each round measures one, then the other: a burst of load from elsewhere on the
                # machine falls on one pair, and the median of the rounds leaves it out.
                for round_number in range(1, args.rounds + 1):
                    results.append(
                        measure_route(route_process, route_url, workers, round_number, dsn, script, args)
                    )
                    results.append(
                        measure(
                            "reference", workers, reference_process,
                            f"{reference_url}/v1/returns/route", script, args, round_number,
                        )
                    )  # fmt: skip
            finally:
                stop(route_process)
                if reference_process is not None:
                    stop(reference_process)
    finally:
        asyncio.run(drop_database(admin_dsn, name))
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, POST /v1/returns/route, 127.0.0.1"
    )
    print(
        f"{'app':<10} {'workers':>7} {'round':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU µs/req':>11} {'errors'}"
    )
    for r in results:
        errors = "" if r.socket_errors == "none" else r.socket_errors
        print(
            f"{r.name:<10} {r.workers:>7} {r.round:>5} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.cpu_us_per_request:>11.0f} {errors}"
        )
    for workers in args.workers:
        pairs = [
            (route, reference)
            for route in results
            for reference in results
            if route.name == "route"
            and reference.name == "reference"
            and route.workers == reference.workers == workers
            and route.round == reference.round
        ]
        throughput = sorted(route.rps / reference.rps for route, reference in pairs)
        cpu = sorted(reference.cpu_us_per_request / route.cpu_us_per_request for route, reference in pairs)
        print(
            f"ratio route/reference, {workers} worker(s), median of {len(pairs)} round(s): "
            f"throughput {statistics.median(throughput):.2f} ({throughput[0]:.2f}-{throughput[-1]:.2f}), "
            f"CPU per request {statistics.median(cpu):.2f} ({cpu[0]:.2f}-{cpu[-1]:.2f})"
        )


if __name__ == "__main__":
    main()

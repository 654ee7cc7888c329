"""The irreducible part of routing a return, as a yardstick for `bench/route.py`.

It validates the same request with the same pydantic model, stores the same decision row with one
raw asyncpg INSERT (committed: autocommit), and answers it. No policy, no auth, no ORM: whatever the
real route costs beyond this is what `bench/route.py` reports as the ratio.

Run by `bench/route.py` with `REFERENCE_DATABASE_URL` (a plain postgresql:// DSN),
`REFERENCE_SAMPLE` (a JSON file holding a decision answer, its order snapshot and request) and
`REFERENCE_API_KEY_ID`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.domain import ReturnRequest

INSERT = """
INSERT INTO decisions (id, created_at, as_of, channel, platform, classification, order_ref, ticket_id,
    reason, queue, eligible, sla_due_at, policy_id, policy_version, sandbox, api_key_id, answer,
    order_snapshot, request)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18::jsonb,
    $19::jsonb)
"""

sample = json.loads(Path(os.environ["REFERENCE_SAMPLE"]).read_text())
answer_template = sample["answer"]
order_snapshot = json.dumps(sample["order_snapshot"])
api_key_id = os.environ["REFERENCE_API_KEY_ID"]
pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(os.environ["REFERENCE_DATABASE_URL"], min_size=10, max_size=10)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/returns/route", status_code=201)
async def route_return(body: ReturnRequest) -> JSONResponse:
    now = datetime.now(UTC)
    decision_id = uuid.uuid4()
    answer = {**answer_template, "decision_id": str(decision_id), "created_at": now.isoformat()}
    a = answer_template
    assert pool is not None
    await pool.execute(
        INSERT,
        decision_id,
        now,
        body.as_of or now,
        a["channel"],
        a["platform"],
        a["classification"],
        a["order"]["order_ref"],
        body.ticket_id,
        body.reason.value,
        a["queue"]["name"],
        a["policy"]["eligible"],
        datetime.fromisoformat(a["queue"]["sla_due_at"]),
        a["policy"]["id"],
        a["policy"]["version"],
        a["sandbox"],
        api_key_id,
        json.dumps(answer),
        order_snapshot,
        json.dumps(body.model_dump(mode="json", exclude={"customer_message"})),
    )
    return JSONResponse(answer, status_code=201)

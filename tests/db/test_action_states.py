"""The action lifecycle: one table of moves, and a database that refuses any state outside it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Uuid, bindparam, insert, text
from sqlalchemy.exc import IntegrityError

from app.action_state import TRANSITIONS, ActionState, sql_in
from app.db.tables import Action, Decision, UTCDateTime
from app.runtime import Runtime


def test_every_state_has_its_moves_and_only_failed_frees_the_decision() -> None:
    assert set(TRANSITIONS) == set(ActionState)
    assert [state for state in ActionState if not state.holds_decision] == [ActionState.failed]
    assert {state for state in ActionState if state.pending} == {
        ActionState.requested,
        ActionState.submitted,
        ActionState.unknown,
    }
    # Settled is settled: nothing moves on from a success or a failure.
    assert not TRANSITIONS[ActionState.succeeded]
    assert not TRANSITIONS[ActionState.failed]
    assert not ActionState.requested.may_become(ActionState.succeeded)  # nothing was sent yet
    assert {state.status for state in ActionState} == {"succeeded", "failed", "pending"}


def test_the_constraints_name_the_states_of_the_enum() -> None:
    assert sql_in(ActionState) == ("status IN ('requested', 'submitted', 'succeeded', 'failed', 'unknown')")
    index = next(i for i in Action.__table__.indexes if i.name == "uq_actions_active_per_decision")
    assert str(index.dialect_options["postgresql"]["where"]) == (
        "status IN ('requested', 'submitted', 'succeeded', 'unknown')"
    )


async def test_the_database_refuses_a_state_the_lifecycle_does_not_know(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    decision_id = uuid.uuid4()
    typed = (
        bindparam("id", type_=Uuid()),
        bindparam("decision", type_=Uuid()),
        bindparam("now", type_=UTCDateTime()),
    )
    async with runtime.database.transaction() as session:
        await session.execute(
            insert(Decision).values(
                id=decision_id,
                created_at=now,
                as_of=now,
                channel="shopify_ca",
                platform="shopify",
                classification="retention_refund",
                order_ref="#1001",
                reason="other",
                queue="q",
                eligible=True,
                sla_due_at=now,
                policy_id="p",
                policy_version="1",
                sandbox=True,
                answer={},
                order_snapshot={},
                request={},
            )
        )
    insert_refunded = text(
        "INSERT INTO actions (id, decision_id, kind, status, channel, order_id, created_at, "
        "updated_at, plan, shopify) VALUES (:id, :decision, 'refund', 'refunded', 'shopify_ca', "
        "'gid://shopify/Order/1', :now, :now, '{}', '{}')"
    ).bindparams(*typed)
    with pytest.raises(IntegrityError, match="ck_actions_status"):
        async with runtime.database.transaction() as session:
            await session.execute(insert_refunded, {"id": uuid.uuid4(), "decision": decision_id, "now": now})

"""The lifecycle of a Shopify action: its states and the moves allowed between them.

The database's constraints on the `actions` table are generated from these (a check on the state,
and the partial unique index that lets a decision hold one live action), so no state is named twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ActionStatus(StrEnum):
    """Where an action stands, for a caller: `pending` until it has succeeded or failed."""

    succeeded = "succeeded"
    pending = "pending"
    failed = "failed"


class ActionState(StrEnum):
    """The action's own state: `requested` (recorded, nothing sent), `submitted` (the mutation may
    have gone out), `succeeded`, `failed`, or `unknown` (the answer was lost; it is read back from
    Shopify before anything is sent again). `requested`, `submitted` and `unknown` are `pending`."""

    requested = "requested"  # recorded and committed; nothing sent yet
    submitted = "submitted"  # a mutation may have gone out
    succeeded = "succeeded"
    failed = "failed"  # nothing moved: the decision is free for another action
    unknown = "unknown"  # the answer was lost: read back before anything is sent again

    @property
    def pending(self) -> bool:
        """Not settled yet: a runner or the reconciliation takes it further."""
        return self in _PENDING

    @property
    def holds_decision(self) -> bool:
        """It may still move money, or has: its decision takes no other action meanwhile."""
        return self is not ActionState.failed

    @property
    def status(self) -> ActionStatus:
        """What the API answers: `succeeded`, `failed`, or `pending` for every state in between."""
        return (
            ActionStatus(self.value)
            if self in (ActionState.succeeded, ActionState.failed)
            else ActionStatus.pending
        )

    def may_become(self, state: ActionState) -> bool:
        return state in TRANSITIONS[self]


_PENDING = frozenset({ActionState.requested, ActionState.submitted, ActionState.unknown})

# A move to the same state is a runner taking the step (compare-and-set) before it sends again.
TRANSITIONS: Mapping[ActionState, frozenset[ActionState]] = MappingProxyType(
    {
        ActionState.requested: frozenset({ActionState.submitted, ActionState.failed}),
        ActionState.submitted: frozenset(
            {ActionState.submitted, ActionState.unknown, ActionState.succeeded, ActionState.failed}
        ),
        ActionState.unknown: frozenset(
            {ActionState.unknown, ActionState.submitted, ActionState.succeeded, ActionState.failed}
        ),
        ActionState.succeeded: frozenset(),
        ActionState.failed: frozenset(),
    }
)

PENDING_STATES = tuple(state for state in ActionState if state.pending)
STATES_HOLDING_DECISION = tuple(state for state in ActionState if state.holds_decision)


def sql_in(states: tuple[ActionState, ...] | type[ActionState], column: str = "status") -> str:
    """`status IN ('requested', ...)`: the states as SQL, for a constraint or an index predicate."""
    return f"{column} IN ({', '.join(repr(state.value) for state in states)})"

"""Which handler processes which topic.

A topic without a handler is stored and marked `ignored`.

- `returns/request` makes a routing decision (`return_requested`).
- `returns/approve|decline|cancel|close|reopen|process|update` keep the Return's latest status and
  settle a pending exchange action that made it (`return_status`). They are `skip_if_stale`: an
  event older than a change already applied to the same Return is marked `superseded`, so a late
  `returns/reopen` does not undo a newer `returns/close`.
- `refunds/create` records the refund once, settling the action that made it or, for a refund made
  by hand in Shopify's admin, blocking refund actions on its order (`refund_created`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from app.connectors.registry import Connectors
from app.services.actions import Actions
from app.services.returns import Routing
from app.services.webhooks import refund_created, return_requested, return_status
from app.services.webhooks.handlers import Handler


def handlers(routing: Routing, actions: Actions, connectors: Connectors) -> Mapping[str, Handler]:
    """Every topic's handler, each given only what it uses."""
    status_changed = Handler(return_status.handler(actions, connectors), skip_if_stale=True)
    return MappingProxyType(
        {
            "returns/request": Handler(return_requested.handler(routing, connectors)),
            **{topic: status_changed for topic in return_status.TOPICS},
            "refunds/create": Handler(refund_created.prepare),
        }
    )

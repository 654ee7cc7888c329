"""Which handler processes which topic.

A topic without a handler is stored and marked `ignored`. The return-status topics
(`returns/approve|decline|cancel|close|reopen|process|update`) and `refunds/create` are subscribed,
so their payloads are kept, but not handled yet: they update the actions, and their handlers go
here, with `skip_if_stale=True` where a later event's state must win over an older one that
arrives late.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from app.services.webhooks import return_requested
from app.services.webhooks.handlers import Handler

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "returns/request": Handler(return_requested.prepare),
    }
)

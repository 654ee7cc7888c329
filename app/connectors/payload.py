"""Reading channel JSON defensively: every gap or bad value becomes an `UpstreamError`, never a KeyError.

Each reader takes `where`, a short path such as "Amazon order 113-...: item 1", so the error says
which part of the channel's answer was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from app.domain import Money, minor_unit
from app.errors import UpstreamError


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UpstreamError(f"{where} is not an object")
    return value


def obj(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    if parent.get(key) is None:
        raise UpstreamError(f"{where}: {key} is missing")
    return as_object(parent[key], f"{where}: {key}")


def optional_obj(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    return None if parent.get(key) is None else as_object(parent[key], f"{where}: {key}")


def array(parent: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Sequence[Any]:
    value = parent.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise UpstreamError(f"{where}: {key} is {'missing' if value is None else 'not a list'}")
    return value


def text(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise UpstreamError(f"{where}: {key} is {'missing' if value is None else 'not a non-empty string'}")
    return value


def optional_text(parent: Mapping[str, Any], key: str, where: str) -> str | None:
    """The string at `key`, or None when it is absent, null or empty."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UpstreamError(f"{where}: {key} is not a string")
    return value


def count(parent: Mapping[str, Any], key: str, where: str) -> int:
    value = parent.get(key)
    # bool is an int in Python; a JSON true is no quantity.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UpstreamError(f"{where}: {key} is not a count: {value!r}")
    return value


def timestamp(parent: Mapping[str, Any], key: str, where: str) -> datetime:
    raw = text(parent, key, where)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise UpstreamError(f"{where}: {key} is not an ISO 8601 time: {raw!r}") from exc
    if value.tzinfo is None:
        raise UpstreamError(f"{where}: {key} has no UTC offset: {raw!r}")
    return value


def aware_moment(value: object) -> datetime | None:
    """`value` as a moment when it is an ISO 8601 time with its UTC offset; else None, never an error
    (for times a payload may or may not carry well, where a fallback exists)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment.astimezone(UTC)  # year 1 an hour east of UTC is before the first moment Python has
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else None


def optional_timestamp(parent: Mapping[str, Any], key: str, where: str) -> datetime | None:
    return None if parent.get(key) is None else timestamp(parent, key, where)


def money(parent: Mapping[str, Any], key: str, where: str) -> Money:
    """`{"amount": "12.50", "currencyCode": "USD"}`: both SP-API `Money` and Shopify `MoneyV2`.

    The amount comes back written to the currency's minor unit: Shopify sends `"43.0"` for 43.00,
    and every answer shows money as `"43.00"`. Only the writing changes, never the value: an amount
    finer than the minor unit (`"29.999"`) stays as sent, for the policy to round once, at the end.
    """
    value = obj(parent, key, where)
    here = f"{where}.{key}"
    raw = text(value, "amount", here)
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:
        raise UpstreamError(f"{here}: amount is not a decimal: {raw!r}") from exc
    if not amount.is_finite():
        raise UpstreamError(f"{here}: amount is not a decimal: {raw!r}")
    currency = text(value, "currencyCode", here)
    try:
        found = Money(amount=amount, currency=currency)
    except ValidationError as exc:
        raise UpstreamError(f"{here}: currencyCode is not an ISO 4217 code: {currency!r}") from exc
    try:
        return with_minor_unit(found)
    except InvalidOperation as exc:  # more digits than any price has (1E+40)
        raise UpstreamError(f"{here}: amount is out of range: {raw!r}") from exc


def with_minor_unit(money: Money) -> Money:
    """`money` written to its currency's minor unit (43.0 CAD -> 43.00) when that keeps its value."""
    written = money.amount.quantize(minor_unit(money.currency))
    if written != money.amount:  # finer than the minor unit (29.999): kept exact
        return money
    return Money(amount=written, currency=money.currency)


def validation_detail(exc: ValidationError) -> str:
    """The first problem pydantic found, with its location, for an error detail."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else str(first["msg"])

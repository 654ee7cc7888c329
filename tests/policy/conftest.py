"""Fixtures of the policy tests: the shipped policy book, loaded once, and a `decide` shortcut."""

from __future__ import annotations

import pytest

from app.policy import PolicyBook
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import Decide


@pytest.fixture(scope="session")
def book() -> PolicyBook:
    return PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY})


@pytest.fixture(scope="session")
def decide(book: PolicyBook) -> Decide:
    """`decide(order, as_of, reason=..., items=...)`: the verdict through the channel the order belongs to."""
    return Decide(book)

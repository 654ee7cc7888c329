"""The decision: which policy applies to a return, what it allows, the reply and the queue. Pure functions."""

from app.policy.book import PolicyBook, Verdict
from app.policy.policy_file import PolicyFileError

__all__ = ["PolicyBook", "PolicyFileError", "Verdict"]

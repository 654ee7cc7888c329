"""The policy reader's bounds: what a hostile file cannot make it do, and what an honest one still may."""

from __future__ import annotations

import pickle

import pytest

from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import MAX_CHARS, PolicyFileError, parse_policy, read_yaml
from app.settings import DEFAULT_MERCHANT_POLICY

SHIPPED = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")


def test_an_anchor_reused_honestly_is_read() -> None:
    text = (
        SHIPPED.replace("when: {fault: customer}\n", "when: &customer {fault: customer}\n")
        + "x-unused: *customer\n"
    )
    data = read_yaml(text, source="draft")

    assert data["x-unused"] == {"fault": "customer"}
    assert data["rules"][1]["when"] == {"fault": "customer"}


def test_aliases_nested_thirty_deep_are_refused_before_they_are_expanded() -> None:
    # 9 ** 30 strings: a reader that expanded, or walked the expansion, would never finish.
    anchors = "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"  a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 31)
    )
    text = SHIPPED.replace("must:\n", "x-anchors:\n" + anchors + "must:\n")

    with pytest.raises(PolicyFileError, match="once its aliases are expanded") as refused:
        parse_policy(text, MerchantPolicy, source="draft")
    assert refused.value.line is not None
    assert "a4: &a4" in text.splitlines()[refused.value.line - 1]


def test_a_merge_key_counts_what_it_brings() -> None:
    # `<<` copies the named mapping's keys: it is an alias like any other.
    base = "base: &b {" + ", ".join(f"k{n}: {n}" for n in range(1000)) + "}\n"
    merges = "".join(f"m{n}: {{<<: *b}}\n" for n in range(30))

    with pytest.raises(PolicyFileError, match="once its aliases are expanded"):
        read_yaml(base + merges, source="draft")


def test_a_file_longer_than_the_bound_is_refused_unread() -> None:
    with pytest.raises(PolicyFileError, match=f"a policy holds at most {MAX_CHARS:,}"):
        read_yaml("x: " + "y" * MAX_CHARS, source="draft")


def test_a_second_document_is_refused() -> None:
    with pytest.raises(PolicyFileError, match="found another document") as refused:
        read_yaml("id: a\n---\nid: b\n", source="draft")
    assert refused.value.line == 2


def test_the_error_crosses_a_process_boundary_whole() -> None:
    error = PolicyFileError("draft", "key 'days' appears twice", line=25)

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.source, copy.problem, copy.line, str(copy)) == (
        "draft",
        "key 'days' appears twice",
        25,
        "draft: line 25: key 'days' appears twice",
    )

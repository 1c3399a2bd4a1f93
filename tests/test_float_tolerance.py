"""Floats compare with a tolerance for binary rounding only: 0.1 + 0.2 is 0.3, but a price
that really changed (or a rounding to cents) is a mismatch, never hidden by the tolerance."""

from __future__ import annotations

import pytest

from talkqa.compare import same


@pytest.mark.parametrize(
    ("expected", "actual"),
    [(1.0, 2.0), ("19.99", 19.98), (0.0, 1e-6), (1e6, 1e6 + 1.0), ([1.0, 2.0], [1.0, 2.5])],
)
def test_floats_that_differ_beyond_rounding_are_not_the_same(
    expected: object, actual: object
) -> None:
    assert not same(expected, actual, "float", source_path="price", target_path="unit_cost")


def test_floats_equal_up_to_binary_rounding_are_the_same() -> None:
    assert same(0.1 + 0.2, 0.3, "float", source_path="price", target_path="unit_cost")
    assert same([0.1 + 0.2], ["0.3"], "float", source_path="price", target_path="unit_cost")

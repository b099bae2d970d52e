"""push.settle: how long after a push its tag is re-read (twice the push's span, within bounds)."""

from __future__ import annotations

import pytest

from gitops_action.push.settle import SETTLE, wait


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (0.0, SETTLE[1]),  # at least the lower bound
        (0.01, SETTLE[1]),
        (1.5, SETTLE[0] * 1.5),  # twice the span a racing run needs
        (3.0, SETTLE[0] * 3.0),
        (60.0, SETTLE[2]),  # at most the upper bound
    ],
)
def test_wait(span: float, expected: float) -> None:
    assert wait(span) == pytest.approx(expected)


def test_the_bounds_are_what_the_docstring_says() -> None:
    factor, least, most = SETTLE
    assert factor == 2.0 and least < most
    assert wait(most) == most  # 2 x most is past the bound

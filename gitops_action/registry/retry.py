"""The one retry policy for registry calls (a push run's writes and reads, a promotion's reads and
tags): transient failures (5xx, resets, timeouts) are tried again with exponential backoff; never
401/403, a missing tag or bad input."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gitops_action.registry.oci import Call, Pulled, Pushed

T = TypeVar("T", Pushed, Pulled, Call)


@dataclass(frozen=True)
class Retry:
    """How many times a call is made at most, and the first wait between two (doubled each time)."""

    attempts: int = 4
    backoff: float = 1.0

    def run(self, action: Callable[[], T], log: list[str], what: str) -> T:
        """`action`'s result once it succeeds, fails for good, or used up its attempts; each retry
        said in `log`."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            result = action()
            call = result if isinstance(result, Call) else result.call
            if call.ok or call.failure != "transient" or attempt == self.attempts:
                return result
            log.append(
                f"{what}: transient failure (attempt {attempt}/{self.attempts}), "
                f"retrying in {delay:.0f}s: {call.error}"
            )
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

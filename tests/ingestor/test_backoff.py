"""The reconnect backoff: jittered, doubling, capped, with a floor of half its ceiling."""

from __future__ import annotations

import random

from cryptopipeline.ingestor._connection import Backoff


def test_each_delay_lies_between_half_and_all_of_a_doubling_capped_ceiling() -> None:
    for seed in range(200):
        backoff = Backoff(0.25, 2.0, random.Random(seed))
        for ceiling in (0.25, 0.5, 1.0, 2.0, 2.0, 2.0):
            assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_the_floor_bounds_a_reconnect_storm() -> None:
    """Whatever the draws, a socket reconnects at most three times in its first second
    (docs/ingestor.md, "Coinbase limits that matter")."""
    for seed in range(200):
        backoff, elapsed, reconnects = Backoff(0.25, 30.0, random.Random(seed)), 0.0, 0
        while (elapsed := elapsed + backoff.next_delay()) < 1.0:
            reconnects += 1
        assert reconnects <= 3


def test_reset_starts_again_from_the_initial_ceiling() -> None:
    backoff = Backoff(0.25, 30.0, random.Random(1))
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert 0.125 <= backoff.next_delay() <= 0.25

"""The one policy for asking Kafka again for something it is still creating: a topic's
metadata right after the topic was created, a coordinator while the broker makes
`__consumer_offsets` or `__transaction_state`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Retry:
    """`attempts` tries (None: until the caller's timeout), `delay_s` apart."""

    attempts: int | None = 1
    delay_s: float = 0.2

    async def tries(self) -> AsyncIterator[int]:
        """Yield the attempt number (from 0), sleeping `delay_s` before each one after the first."""
        attempt = 0
        while self.attempts is None or attempt < self.attempts:
            if attempt:
                await asyncio.sleep(self.delay_s)
            yield attempt
            attempt += 1


ONCE = Retry(attempts=1)
"""Ask once: for a topic that must exist already."""

NEW_TOPIC = Retry(attempts=25, delay_s=0.2)
"""A topic created a moment ago (by this program or another) reaches a client's metadata
within a second or two; 5 s covers a loaded machine."""

UNTIL_TIMEOUT = Retry(attempts=None, delay_s=0.2)
"""Keep asking; the caller bounds the wait with `asyncio.timeout`."""

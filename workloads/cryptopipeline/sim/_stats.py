"""Counters the simulator exposes at `/sim/stats`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class SimStats:
    """What happened so far, counted once, in one place."""

    connections_opened: int = 0
    connections_open: int = 0
    trades_published: int = 0
    events_published: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_duplicated: int = 0
    frames_malformed: int = 0
    fault_closes: int = 0
    fault_stalls: int = 0
    slow_consumer_closes: int = 0
    bad_requests: int = 0
    market_done: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

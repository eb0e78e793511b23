"""Fault injection: the plan (what to break, on which connections) and its per-connection dice.

A plan applies to feed messages only (ticker, match, heartbeat); replies to subscribe and
errors always go through, so a client can always tell what it subscribed to.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class FaultPlan(BaseModel):
    """What to break. Every field is off by default; all of them combine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    close_every_messages: int = Field(default=0, ge=0, description="close after N feed messages")
    close_every_seconds: float = Field(
        default=0.0, ge=0, description="close S seconds after connect"
    )
    stall_seconds: float = Field(default=0.0, ge=0, description="stop sending for S seconds ...")
    stall_every_seconds: float = Field(default=0.0, ge=0, description="... every N seconds")
    drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="fraction of feed messages dropped"
    )
    duplicate_rate: float = Field(default=0.0, ge=0, le=1, description="fraction sent twice")
    malformed_rate: float = Field(
        default=0.0, ge=0, le=1, description="fraction replaced by non-JSON"
    )
    write_delay: float = Field(
        default=0.0, ge=0, description="seconds slept before each feed message"
    )
    connections: tuple[int, ...] | None = Field(
        default=None,
        description="connection indices (0 = first accepted) the plan applies to; all if None",
    )

    def applies_to(self, index: int) -> bool:
        return self.connections is None or index in self.connections

    @property
    def alters_messages(self) -> bool:
        """Whether any per-message fault is on (the fast path skips the dice otherwise)."""
        return bool(
            self.close_every_messages
            or self.drop_rate
            or self.duplicate_rate
            or self.malformed_rate
            or self.write_delay
        )

    @property
    def has_timers(self) -> bool:
        return bool(self.close_every_seconds or (self.stall_seconds and self.stall_every_seconds))

    def stall_end(self, elapsed: float) -> float | None:
        """If `elapsed` seconds after connect lies in a stall window, when (elapsed) it ends.

        Windows are `[k*every, k*every + seconds)` for k = 1, 2, ...
        """
        if not (self.stall_seconds and self.stall_every_seconds):
            return None
        k = int(elapsed // self.stall_every_seconds)
        if k < 1:
            return None
        start = k * self.stall_every_seconds
        end = start + self.stall_seconds
        return end if elapsed < end else None

    def next_deadline(self, elapsed: float) -> float | None:
        """The next moment (elapsed) at which a timed fault starts, for the writer's wake-up."""
        times: list[float] = []
        if self.close_every_seconds:
            times.append(self.close_every_seconds)
        if self.stall_seconds and self.stall_every_seconds:
            times.append((int(elapsed // self.stall_every_seconds) + 1) * self.stall_every_seconds)
        future = [t for t in times if t > elapsed]
        return min(future) if future else None


MALFORMED_FRAME = b'{"type":"ticker","sequence":'
"""What a malformed frame carries: a JSON text cut short."""


class FaultDice:
    """The per-connection random source of a plan: seeded by (seed, connection index)."""

    __slots__ = ("rng",)

    def __init__(self, seed: int, connection_index: int) -> None:
        self.rng = random.Random(f"faults:{seed}:{connection_index}")

    def outcome(self, plan: FaultPlan) -> str:
        """`"drop"`, `"malformed"`, `"duplicate"` or `"send"` for the next feed message."""
        roll = self.rng.random
        if plan.drop_rate and roll() < plan.drop_rate:
            return "drop"
        if plan.malformed_rate and roll() < plan.malformed_rate:
            return "malformed"
        if plan.duplicate_rate and roll() < plan.duplicate_rate:
            return "duplicate"
        return "send"

"""Fixtures for simulator tests: a simulator on a free port, started and stopped per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sim_helpers import START, SimFactory

from cryptopipeline.sim import SimConfig, SimServer


@pytest.fixture
def sim() -> SimFactory:
    """`async with sim(speed=0, max_trades=10) as server:` — a simulator on a free port."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[SimServer]:
        values: dict[str, Any] = {"port": 0, "seed": 7, "start_time": START, "speed": 0}
        values.update(overrides)
        async with SimServer(SimConfig(**values)) as server:
            yield server

    return start

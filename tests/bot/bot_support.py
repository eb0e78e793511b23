"""Helpers shared by the bot tests: EC keys, a simulator with the order API, signals, ticks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cryptopipeline.records import Action, CandleWindow, TradeSignal
from cryptopipeline.sim import SimConfig, SimServer

KEY_NAME = "organizations/test-org/apiKeys/test-key-0001"


def new_key_pem() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def write_keys(path: Path, public_pem: str) -> Path:
    path.write_text(json.dumps({KEY_NAME: public_pem}))
    return path


@asynccontextmanager
async def trading_sim(keys: Path, **overrides: object) -> AsyncIterator[SimServer]:
    """A simulator whose market has finished (a fixed book top) and whose order API is up."""
    values: dict[str, object] = dict(
        port=0, trade_port=0, speed=0, max_trades=50, products=("BTC-USD",),
        start_time=datetime(2026, 1, 1, tzinfo=UTC), trade_keys=keys,
    )  # fmt: skip
    values.update(overrides)
    async with SimServer(SimConfig(**values)) as sim:  # type: ignore[arg-type]
        await sim.market_done.wait()
        yield sim


def signal(n: int, action: Action = Action.BUY, product: str = "BTC-USD") -> TradeSignal:
    return TradeSignal(
        signal_id=f"test-signal-{n:08d}",
        product_id=product,
        event_time="2026-01-01T00:01:00.000000Z",
        action=action,
        strategy="test",
        parameters={},
        indicators={},
        window=CandleWindow(
            start="2026-01-01T00:00:00.000000Z", end="2026-01-01T00:01:00.000000Z", interval_s=60
        ),
        close_price=Decimal("60000"),
        last_trade_id=n,
    )


def ticker(product: str, bid: Decimal, ask: Decimal, trade_id: int = 1) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "type": "ticker", "product_id": product, "price": str(ask), "best_bid": str(bid),
        "best_ask": str(ask), "time": now, "trade_id": trade_id, "last_size": "0.01",
        "side": "buy", "sequence": trade_id,
    }  # fmt: skip

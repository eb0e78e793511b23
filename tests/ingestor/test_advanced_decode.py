"""The Advanced Trade decoder (ingestor/_advanced.py), pure: the recorded live frames
(../shared/data/coinbase/COINBASE.advanced-trade.jsonl, RECORDED) and hand-made frames."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from cryptopipeline.ingestor._advanced_decode import AdvancedDecoder, last_trade_hint, ticker_record
from cryptopipeline.ingestor._connection import time_window
from cryptopipeline.ingestor._decode import (
    ControlFrame,
    Family,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TradeFrame,
    decode,
)
from cryptopipeline.ingestor._intake import Health, Intake
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._sequencer import TradeSequencer
from cryptopipeline.ingestor._settings import IngestorSettings, IngestSettings

RECORDED = Path(__file__).resolve().parents[2].parent / "shared/data/coinbase"
PRODUCTS = frozenset({"BTC-USD", "ETH-USD"})


def recorded_lines() -> list[bytes]:
    path = RECORDED / "COINBASE.advanced-trade.jsonl"
    if not path.exists():
        pytest.skip(f"recorded Advanced Trade data not found at {path}")
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def test_recorded_frames_become_exchange_shaped_records() -> None:
    decoder = AdvancedDecoder(PRODUCTS, 16 * 1024 * 1024)
    trades: list[TradeFrame] = []
    heartbeats: list[HeartbeatFrame] = []
    rejected: list[RejectedFrame] = []
    for line in recorded_lines():
        out = decoder.decode(line.decode())
        assert not out.repeated and not out.lost  # sequence_num 0..1029, no gap
        for frame in out.frames:
            if isinstance(frame, TradeFrame):
                trades.append(frame)
            elif isinstance(frame, HeartbeatFrame):
                heartbeats.append(frame)
            elif isinstance(frame, RejectedFrame):
                rejected.append(frame)
    assert len(trades) == 279
    # the channels the ingestor does not read are dead-lettered as unknown, never published
    assert {r.reason for r in rejected} == {Reject.UNKNOWN_TYPE}
    assert len(heartbeats) == 25 * 2  # per product (the snapshots came first)
    for frame in trades:
        body = orjson.loads(frame.raw)
        assert list(body) == [
            "type", "product_id", "price", "side", "time", "trade_id", "last_size"
        ]  # fmt: skip
        assert type(body["trade_id"]) is int and len(body["time"]) == 27
        # the record passes the Exchange feed's own decoder: same contract downstream
        again = decode(frame.raw.decode(), PRODUCTS, 65_536)
        assert isinstance(again, TradeFrame) and again.trade_id == frame.trade_id
    btc = [f.trade_id for f in trades if f.product_id == "BTC-USD"]
    assert btc[:100] == sorted(btc[:100])  # each message's trades in trade-id order


def test_side_becomes_the_takers_and_time_gets_six_digits() -> None:
    trade = {"product_id": "BTC-USD", "trade_id": "1068572088", "price": "65083.66",
             "size": "0.00007299", "time": "2026-08-09T21:05:38.50436Z", "side": "BUY"}  # fmt: skip
    body = orjson.loads(ticker_record(trade, PRODUCTS, None, None).raw)
    assert body == {
        "type": "ticker", "product_id": "BTC-USD", "price": "65083.66", "side": "sell",
        "time": "2026-08-09T21:05:38.504360Z", "trade_id": 1068572088, "last_size": "0.00007299",
    }  # fmt: skip


def _message(seq: int, channel: str, events: list[object]) -> str:
    return orjson.dumps(
        {"channel": channel, "client_id": "", "timestamp": "2026-01-01T00:00:00Z",
         "sequence_num": seq, "events": events}
    ).decode()  # fmt: skip


def _trade(trade_id: int, side: str = "SELL") -> dict[str, str]:
    return {"product_id": "BTC-USD", "trade_id": str(trade_id), "price": "1.5", "size": "2",
            "time": "2026-01-01T00:00:01.25Z", "side": side}  # fmt: skip


def test_sequence_and_heartbeat_counter_gaps_and_repeats() -> None:
    decoder = AdvancedDecoder(PRODUCTS, 65_536)
    first = decoder.decode(
        _message(0, "market_trades", [{"type": "update", "trades": [_trade(5)]}])
    )
    assert not first.lost and [f.trade_id for f in first.frames] == [5]  # type: ignore[union-attr]
    assert decoder.decode(_message(0, "market_trades", [])).repeated
    assert decoder.decode(_message(2, "subscriptions", [{"subscriptions": {}}])).lost
    beat = {"current_time": "2026-01-01 00:00:02.5 +0000 UTC m=+2.5", "heartbeat_counter": 2}
    out = decoder.decode(_message(3, "heartbeats", [beat]))
    assert out.alive and not out.lost
    (hb,) = out.frames
    assert isinstance(hb, HeartbeatFrame) and hb.last_trade_id == 5
    assert orjson.loads(hb.raw) == {
        "type": "heartbeat", "last_trade_id": 5, "product_id": "BTC-USD",
        "time": "2026-01-01T00:00:02.500000Z",
    }  # fmt: skip
    skipped = decoder.decode(_message(4, "heartbeats", [{**beat, "heartbeat_counter": 5}]))
    assert skipped.lost  # three seconds missing


def _update(**override: str) -> str:
    return _message(0, "market_trades", [{"type": "update", "trades": [_trade(1) | override]}])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", Reject.MALFORMED_JSON),
        ('{"channel":"market_trades"}', Reject.INVALID_FIELD),
        (_update(trade_id="ab"), Reject.INVALID_FIELD),
        (_update(price="NaN"), Reject.INVALID_FIELD),
        (_update(time="2100-01-01T00:00:00Z"), Reject.EVENT_TIME),
        (_update(product_id="X-Y"), Reject.UNSUBSCRIBED_PRODUCT),
        (_message(0, "level2", []), Reject.UNKNOWN_TYPE),
    ],
)  # fmt: skip
def test_bad_frames_are_rejected_with_a_reason(frame: str, reason: Reject) -> None:
    out = AdvancedDecoder(PRODUCTS, 65_536, time_window(IngestSettings())).decode(
        frame, time.time_ns() // 1000
    )
    assert [f.reason for f in out.frames if isinstance(f, RejectedFrame)] == [reason]


def test_errors_are_control_frames() -> None:
    out = AdvancedDecoder(PRODUCTS, 65_536).decode(
        '{"type":"error","message":"authentication failure"}'
    )
    assert out.frames == [
        ControlFrame("error", {"type": "error", "message": "authentication failure"})
    ]


def test_a_last_trade_hint_is_never_published() -> None:
    settings = IngestorSettings(exchange={"feed": "advanced-trade"})
    intake = Intake(settings, IngestorMetrics(pipeline=settings.pipeline_name), Health())
    key = ("BTC-USD", Family.TICKER)
    intake.sequencers = {key: TradeSequencer(next_id=40)}  # as a session sets them up
    intake.gap_signals = {key: asyncio.Event()}
    intake.accept(last_trade_hint("BTC-USD", 42), -1, 0)
    assert len(intake.outbox) == 0  # nothing to publish
    assert intake.gap_signals[key].is_set()  # trades 40..42 are now a gap to fill


@pytest.mark.parametrize(
    "current",
    ["2026-13-01 00:00:02 +0000 UTC", "\u0662\u0660\u0662\u0666-01-01 00:00:02 +0000 UTC"],
)
def test_an_impossible_heartbeat_time_is_a_rejection_not_an_exception(current: str) -> None:
    """A month 13, or digits of another script, in `current_time` (promise 4)."""
    beat = {"current_time": current, "heartbeat_counter": 1}
    out = AdvancedDecoder(PRODUCTS, 65_536).decode(_message(0, "heartbeats", [beat]))
    assert [f.reason for f in out.frames if isinstance(f, RejectedFrame)] == [Reject.INVALID_FIELD]

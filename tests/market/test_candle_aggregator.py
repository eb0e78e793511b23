"""Candles against a separately written batch computation: several products, out-of-order
trades within the grace, a late trade past it, duplicates, a quiet stretch closed by
heartbeats, any permutation within the grace (hypothesis), and real recorded tickers."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopipeline.market import Candle, CandleAggregator, Heartbeat, Tick, parse_event

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED = REPO_ROOT.parent / "shared" / "data" / "coinbase" / "COINBASE.ws.28.0.jsonl"
S = 1_000_000


@dataclass(frozen=True)
class T:
    product: str
    trade_id: int
    time_us: int
    price: str
    size: str


@dataclass(frozen=True)
class H:
    product: str
    time_us: int


Event = T | H


def batch_candles(events: list[Event], intervals: list[int], grace_us: int) -> list[Candle]:
    """The obvious way: decide lateness by the event time seen before each trade, drop repeated
    trade ids, group, sort each group by (time, trade_id), and keep windows the final event
    time has closed."""
    seen_time: dict[str, int] = {}
    kept: dict[tuple[str, int, int], dict[int, T]] = defaultdict(dict)
    for event in events:
        before = seen_time.get(event.product)
        if isinstance(event, T):
            for interval in intervals:
                start = event.time_us // (interval * S) * (interval * S)
                end = start + interval * S
                if before is not None and end + grace_us <= before:
                    continue
                kept[(event.product, interval, start)].setdefault(event.trade_id, event)
        seen_time[event.product] = max(
            before if before is not None else event.time_us, event.time_us
        )
    candles = []
    for (product, interval, start), by_id in kept.items():
        end = start + interval * S
        if end + grace_us > seen_time[product]:
            continue
        trades = sorted(by_id.values(), key=lambda t: (t.time_us, t.trade_id))
        prices = [Decimal(t.price) for t in trades]
        volume = sum((Decimal(t.size) for t in trades), Decimal(0))
        notional = sum((Decimal(t.price) * Decimal(t.size) for t in trades), Decimal(0))
        candles.append(
            Candle(
                product_id=product,
                interval_s=interval,
                start_us=start,
                end_us=end,
                open=prices[0],
                high=max(prices),
                low=min(prices),
                close=prices[-1],
                volume=volume,
                vwap=notional / volume,
                trade_count=len(trades),
                first_trade_id=trades[0].trade_id,
                last_trade_id=trades[-1].trade_id,
            )
        )
    return sorted(candles, key=lambda c: (c.product_id, c.end_us, c.interval_s))


def stream(aggregator: CandleAggregator, events: list[Event]) -> list[Candle]:
    out: list[Candle] = []
    for event in events:
        if isinstance(event, T):
            out += aggregator.on_trade(
                event.product,
                event.trade_id,
                event.time_us,
                Decimal(event.price),
                Decimal(event.size),
            )
        else:
            out += aggregator.on_heartbeat(event.product, event.time_us)
    return out


def by_product(candles: list[Candle]) -> list[Candle]:
    return sorted(candles, key=lambda c: (c.product_id, c.end_us, c.interval_s))


T0 = 1_700_000_040 * S  # a minute boundary


def fixture_events() -> list[Event]:
    ev: list[Event] = [
        T("BTC-USD", 1, T0 + 1 * S, "100.00", "0.5"),
        T("ETH-USD", 501, T0 + 2 * S, "10.5", "3"),
        T("BTC-USD", 2, T0 + 30 * S, "101.25", "0.25"),
        T("BTC-USD", 3, T0 + 59 * S, "99.50", "1"),
        T("BTC-USD", 5, T0 + 61 * S, "99.00", "0.1"),  # next window
        T("BTC-USD", 4, T0 + 59_500_000, "98.75", "0.2"),  # out of order, within 2 s grace
        T("BTC-USD", 4, T0 + 59_500_000, "98.75", "0.2"),  # duplicate id: dropped
        T("ETH-USD", 502, T0 + 59 * S, "10.7", "1.5"),
        T("BTC-USD", 6, T0 + 90 * S, "102.00", "0.3"),  # closes [T0, T0+60) (90 >= 60 + 2)
        T("BTC-USD", 0, T0 + 10 * S, "50.00", "9"),  # late: its window closed
        T("ETH-USD", 503, T0 + 61 * S, "10.9", "2"),
        T("ETH-USD", 504, T0 + 62 * S, "11.0", "1"),  # closes ETH's first window
        T("BTC-USD", 7, T0 + 119 * S, "102.50", "0.3"),
        T("BTC-USD", 8, T0 + 119 * S, "102.40", "0.3"),  # same time: order by trade id
    ]
    # a quiet stretch: heartbeats only, every second for four minutes
    ev += [H("BTC-USD", T0 + (120 + k) * S) for k in range(0, 240)]
    ev += [H("ETH-USD", T0 + (63 + k) * S) for k in range(0, 200)]
    ev.append(T("BTC-USD", 9, T0 + 361 * S, "103", "1"))
    ev.append(T("BTC-USD", 10, T0 + 425 * S, "104", "1"))
    return ev


@pytest.mark.parametrize("intervals", [[60], [60, 300], [30, 60, 120]])
def test_candles_equal_the_batch_computation(intervals: list[int]) -> None:
    events = fixture_events()
    aggregator = CandleAggregator(intervals, grace_s=2.0)
    got = stream(aggregator, events)
    assert by_product(got) == batch_candles(events, intervals, 2 * S)
    assert aggregator.late_trades == 1
    assert aggregator.duplicate_trades == 1


def test_the_fixture_candles_by_hand() -> None:
    aggregator = CandleAggregator([60], grace_s=2.0)
    got = stream(aggregator, fixture_events())
    btc = [c for c in got if c.product_id == "BTC-USD"]
    first = btc[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("100.00"),
        Decimal("101.25"),
        Decimal("98.75"),
        Decimal("98.75"),
    )
    assert first.volume == Decimal("1.95") and first.trade_count == 4
    assert first.vwap == (
        Decimal("100.00") * Decimal("0.5")
        + Decimal("101.25") * Decimal("0.25")
        + Decimal("99.50")
        + Decimal("98.75") * Decimal("0.2")
    ) / Decimal("1.95")
    assert (first.first_trade_id, first.last_trade_id) == (1, 4)
    second = btc[1]
    assert second.close == Decimal("102.40") and second.last_trade_id == 8
    # the quiet minutes produce no candles; heartbeats closed the window at 120 s
    assert [c.start_us - T0 for c in btc] == [0, 60 * S, 360 * S]
    assert got.index(second) < len(got)


def test_heartbeats_alone_close_windows_and_closing_is_oldest_first() -> None:
    aggregator = CandleAggregator([60, 120], grace_s=1.0)
    aggregator.on_trade("BTC-USD", 1, T0 + 5 * S, Decimal("1"), Decimal("1"))
    aggregator.on_trade("BTC-USD", 2, T0 + 30 * S, Decimal("2"), Decimal("1"))
    assert aggregator.on_heartbeat("BTC-USD", T0 + 60 * S) == []
    closed = aggregator.on_heartbeat("BTC-USD", T0 + 61 * S)
    assert [(c.interval_s, c.start_us - T0) for c in closed] == [(60, 0)]
    assert aggregator.on_trade("BTC-USD", 3, T0 + 65 * S, Decimal("2"), Decimal("1")) == []
    assert aggregator.on_heartbeat("ETH-USD", T0 + 500 * S) == []  # other products: no effect
    closed = aggregator.on_heartbeat("BTC-USD", T0 + 200 * S)
    assert [(c.interval_s, c.start_us - T0) for c in closed] == [(60, 60 * S), (120, 0)]
    assert aggregator.open_windows("BTC-USD") == 0


def test_zero_grace_closes_on_the_first_event_at_the_window_end() -> None:
    aggregator = CandleAggregator([60], grace_s=0)
    aggregator.on_trade("BTC-USD", 1, T0, Decimal("1"), Decimal("1"))
    closed = aggregator.on_trade("BTC-USD", 2, T0 + 60 * S, Decimal("2"), Decimal("1"))
    assert [c.close for c in closed] == [Decimal("1")]


def test_snapshot_restore_mid_stream_gives_the_same_candles() -> None:
    events = fixture_events()
    for cut in (3, 9, 14, 100, len(events) - 1):
        straight = CandleAggregator([60, 300], grace_s=2.0)
        expected = stream(straight, events)
        first = CandleAggregator([60, 300], grace_s=2.0)
        got = stream(first, events[:cut])
        restored = CandleAggregator.restore(json.loads(json.dumps(first.snapshot())))
        got += stream(restored, events[cut:])
        assert got == expected
        assert (restored.late_trades, restored.duplicate_trades) == (1, 1)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="intervals"):
        CandleAggregator([0])
    with pytest.raises(ValueError, match="grace"):
        CandleAggregator([60], grace_s=-1)
    with pytest.raises(ValueError, match="version"):
        CandleAggregator.restore({"version": 99})


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_permutation_within_the_grace_gives_the_same_candles(data: st.DataObject) -> None:
    """Trades shuffled only by less than the grace: every one is on time, and the candles equal
    the batch computation over the trades in (time, trade_id) order."""
    grace_us = 3 * S
    count = data.draw(st.integers(min_value=1, max_value=60))
    gaps = data.draw(st.lists(st.integers(0, 2 * S), min_size=count, max_size=count))
    prices = data.draw(st.lists(st.integers(9_000, 11_000), min_size=count, max_size=count))
    sizes = data.draw(st.lists(st.integers(1, 500), min_size=count, max_size=count))
    time = T0
    trades = []
    for i in range(count):
        time += gaps[i]
        trades.append(
            T("BTC-USD", 1000 + i, time, f"{prices[i] / 100:.2f}", f"{sizes[i] / 1000:.3f}")
        )
    keys = data.draw(
        st.lists(st.integers(0, grace_us - 1), min_size=count, max_size=count)
    )  # each trade arrives at (its time + a delay below the grace)
    arrival = sorted(range(count), key=lambda i: (trades[i].time_us + keys[i], i))
    shuffled: list[Event] = [trades[i] for i in arrival]
    shuffled.append(H("BTC-USD", time + 3600 * S))
    aggregator = CandleAggregator([1, 60], grace_s=grace_us / S)
    got = stream(aggregator, shuffled)
    expected = batch_candles(shuffled, [1, 60], grace_us)
    assert by_product(got) == expected
    in_order = batch_candles([*trades, H("BTC-USD", time + 3600 * S)], [1, 60], grace_us)
    assert aggregator.late_trades == 0
    assert expected == in_order


def test_recorded_coinbase_tickers() -> None:
    if not RECORDED.exists():
        pytest.skip(f"recorded Coinbase feed not found at {RECORDED} (../shared/data)")
    events: list[Event] = []
    ticks = 0
    for line in RECORDED.read_bytes().splitlines():
        event = parse_event(line)
        if isinstance(event, Tick):
            ticks += 1
            events.append(
                T(
                    event.product_id,
                    event.trade_id,
                    event.time_us,
                    str(event.price),
                    str(event.size),
                )
            )
        elif isinstance(event, Heartbeat):
            events.append(H(event.product_id, event.time_us))
    assert ticks > 100
    latest = max(e.time_us for e in events)
    for product in {e.product for e in events}:
        events.append(H(product, latest + 3600 * S))
    for intervals in ([1], [5, 60]):
        aggregator = CandleAggregator(intervals, grace_s=2.0)
        got = stream(aggregator, events)
        assert by_product(got) == batch_candles(events, intervals, 2 * S)
        assert (
            sum(c.trade_count for c in got if c.interval_s == intervals[-1])
            + (aggregator.late_trades)
            >= ticks - aggregator.duplicate_trades
        )

"""`ksql verify`: the comparison with the signaler's candles and the fixture, without a server
(test_ksqldb_server.py runs verify on the real ksqlDB)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptopipeline.cli import main
from cryptopipeline.coinbase import parse_time
from cryptopipeline.coinbase._time import to_micros
from cryptopipeline.ksql._fixture import FixtureRecord, synthetic_fixture, with_closing
from cryptopipeline.ksql._verify import (
    GRACE_S,
    INTERVAL_S,
    compare_candles,
    expected_candles,
    verify_records,
    verify_variables,
)

REPO = Path(__file__).resolve().parents[2]


def sql_model(records: list[FixtureRecord]) -> list[dict[str, Any]]:
    """What V000002's SQL computes, written out in Python: windows by ROWTIME (milliseconds,
    from `time`), EARLIEST/LATEST_BY_OFFSET in topic order, SUM/MIN/MAX, COUNT(TRADE_ID),
    windows without trades dropped (HAVING), values as JSON numbers would come back."""
    windows: dict[tuple[str, int], list[FixtureRecord]] = {}
    for record in records:
        if record.kind != "ticker":
            continue
        start_ms = record.timestamp_ms // 60_000 * 60_000
        windows.setdefault((record.product_id, start_ms), []).append(record)
    rows = []
    for (product, start_ms), trades in windows.items():
        prices = [t.price for t in trades if t.price is not None]
        sizes = [t.size for t in trades if t.size is not None]
        notional = sum((p * s for p, s in zip(prices, sizes, strict=True)), Decimal(0))
        volume = sum(sizes, Decimal(0))
        rows.append(
            {
                "PRODUCT_ID": product,
                "WINDOW_START": start_ms,
                "WINDOW_END": start_ms + 60_000,
                "OPEN": prices[0],
                "HIGH": max(prices),
                "LOW": min(prices),
                "CLOSE": prices[-1],
                "VOLUME": volume,
                "VWAP": (notional / volume).quantize(Decimal(10) ** -10, rounding=ROUND_HALF_UP),
                "TRADE_COUNT": len(trades),
                "FIRST_TRADE_ID": trades[0].trade_id,
                "LAST_TRADE_ID": trades[-1].trade_id,
            }
        )
    return rows


def test_the_synthetic_fixture_covers_the_hard_cases() -> None:
    records = synthetic_fixture()
    tickers = [r for r in records if r.kind == "ticker"]
    texts = [r.value.decode() for r in tickers]
    assert any('"sequence"' not in t for t in texts)  # backfilled form
    assert any(len(t.split('"time":"')[1].split('"')[0]) < 27 for t in texts)  # trimmed
    assert any(r.time_us % 60_000_000 == 0 for r in tickers)  # on a minute boundary
    assert len({r.timestamp_ms for r in tickers}) < len(tickers)  # same-millisecond trades
    by_product: dict[str, list[FixtureRecord]] = {}
    for record in tickers:
        by_product.setdefault(record.product_id, []).append(record)
    for trades in by_product.values():
        assert [t.trade_id for t in trades] == sorted(t.trade_id for t in trades if t.trade_id)
        assert [t.time_us for t in trades] == sorted(t.time_us for t in trades)


def test_the_sql_semantics_equal_the_signalers_candles_on_the_fixture() -> None:
    records = with_closing(synthetic_fixture(), INTERVAL_S, GRACE_S)
    expected = expected_candles(records)
    assert len(expected) >= 10
    assert compare_candles(expected, sql_model(records)) == []


def test_differences_are_reported_candle_by_candle() -> None:
    records = with_closing(synthetic_fixture(minutes=2), INTERVAL_S, GRACE_S)
    expected = expected_candles(records)
    rows = sql_model(records)
    rows[0] = {**rows[0], "CLOSE": rows[0]["CLOSE"] + 1}
    rows[1] = {**rows[1], "VWAP": rows[1]["VWAP"] + Decimal("2e-10")}
    dropped = rows.pop()
    rows.append({**rows[0], "WINDOW_START": 0, "WINDOW_END": 60_000})
    problems = compare_candles(expected, rows)
    assert any(": close: signaler" in p for p in problems)
    assert any(": vwap: signaler" in p for p in problems)
    assert any(p.startswith(f"missing in ksqlDB: candle {dropped['PRODUCT_ID']}") for p in problems)
    assert any(p.startswith("extra in ksqlDB") for p in problems)
    assert compare_candles([replace(c) for c in expected], sql_model(records)) == []


def test_verify_writes_ticks_the_broker_keeps(tmp_path: Path) -> None:
    """Kafka 4 refuses timestamps over an hour ahead and a 7-day topic deletes old ones at
    once: verify's fixture (synthetic or a capture) ends before now, within the hour."""
    now_us = 1_900_000_000_123_456
    capture = tmp_path / "capture.jsonl"
    capture.write_text(
        "\n".join(r.value.decode() for r in synthetic_fixture(minutes=2)) + "\n", encoding="utf-8"
    )
    for fixture in (None, capture):
        records = verify_records(fixture, now_us)
        times = [r.time_us for r in records]
        assert now_us - 3600 * 10**6 < min(times) and max(times) < now_us
        for record in records:  # ksqlDB reads event time from the message itself
            assert to_micros(parse_time(json.loads(record.value)["time"])) == record.time_us
        windows = {t // 60_000_000 for t in times}
        assert len(windows) >= 3
    shifted_candles = expected_candles(verify_records(capture, now_us))
    original = expected_candles(with_closing(synthetic_fixture(minutes=2), INTERVAL_S, GRACE_S))
    assert [(c.product_id, c.open, c.close, c.vwap) for c in shifted_candles] == [
        (c.product_id, c.open, c.close, c.vwap) for c in original
    ]


def test_fresh_names_for_a_verify_run() -> None:
    names = verify_variables("ab12cd34").as_map()
    assert names["raw_topic"] == "verify_ab12cd34_btc_usd"
    assert names["signals_table"] == "VERIFY_AB12CD34_BTC_USD_SIGNALS"


def test_verify_without_a_url_reports_itself_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CRYPTOPIPELINE_KSQL__URL", raising=False)
    assert main(["ksql", "verify"]) == 77
    assert "skipped: no ksqlDB URL configured" in capsys.readouterr().err

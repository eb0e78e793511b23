"""`ksql verify`: prove the migrations on a real ksqlDB server against the signaler's candles.

It applies ksqldb/ under fresh topic and object names (so nothing of a running pipeline is
touched), writes a tick fixture to the fresh raw topic the way the ingestor does, reads the
candles ksqlDB writes to the fresh signals topic, and compares each one with what
`cryptopipeline.market.CandleAggregator` makes of the same ticks. Then it drops what it made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from cryptopipeline.ksql._client import KsqlClient, KsqlError
from cryptopipeline.ksql._files import MigrationFileError
from cryptopipeline.ksql._fixture import (
    FixtureRecord,
    closing_heartbeats,
    load_fixture,
    recent_start_us,
    shifted,
    synthetic_fixture,
    with_closing,
)
from cryptopipeline.ksql._migrate import MigrationError, apply_migrations
from cryptopipeline.ksql._settings import KsqlSettings, MigrationVariables

log = logging.getLogger(__name__)

INTERVAL_S = 60
GRACE_S = 2.0
# V000002 divides in DOUBLE and rounds to 10 places: within half a unit of the 10th place
# plus DOUBLE's relative error (three roundings, < 4e-16) of the exact quotient.
VWAP_ABSOLUTE_TOLERANCE = Decimal("0.5e-10")
VWAP_RELATIVE_TOLERANCE = Decimal("4e-16")


class CandleLike(Protocol):
    """The fields of `cryptopipeline.market.Candle` that verify compares."""

    @property
    def product_id(self) -> str: ...
    @property
    def interval_s(self) -> int: ...
    @property
    def start_us(self) -> int: ...
    @property
    def end_us(self) -> int: ...
    @property
    def open(self) -> Decimal: ...
    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...
    @property
    def volume(self) -> Decimal: ...
    @property
    def vwap(self) -> Decimal: ...
    @property
    def trade_count(self) -> int: ...
    @property
    def first_trade_id(self) -> int: ...
    @property
    def last_trade_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    migrations_dir: Path
    bootstrap_servers: str | None = None
    fixture: Path | None = None
    timeout_s: float = 180.0
    keep: bool = False


def expected_candles(records: Iterable[FixtureRecord]) -> list[CandleLike]:
    """Run the signaler's candle code over the fixture, in topic order."""
    from cryptopipeline.market import CandleAggregator  # lazy: written by another issue

    aggregator = CandleAggregator(intervals_s=(INTERVAL_S,), grace_s=GRACE_S)
    candles: list[CandleLike] = []
    for record in records:
        if record.kind == "ticker":
            assert record.trade_id is not None and record.price is not None
            assert record.size is not None
            candles.extend(
                aggregator.on_trade(
                    record.product_id, record.trade_id, record.time_us, record.price, record.size
                )
            )
        else:
            candles.extend(aggregator.on_heartbeat(record.product_id, record.time_us))
    return candles


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def compare_candles(expected: Sequence[CandleLike], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every difference between the signaler's candles and ksqlDB's rows; empty when equal.

    Everything must be equal; VWAP within half a unit of the 10th place plus a relative 4e-16
    (V000002 divides in DOUBLE and rounds to 10 places; docs/ksqldb.md, finding 1).
    """
    problems: list[str] = []
    actual: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = (str(row.get("PRODUCT_ID")), int(row["WINDOW_START"]) * 1000)
        if key in actual:
            problems.append(f"ksqlDB wrote window {key} twice (EMIT FINAL should write it once)")
        actual[key] = row
    wanted = {(c.product_id, c.start_us): c for c in expected if c.interval_s == INTERVAL_S}
    for key in sorted(wanted.keys() - actual.keys()):
        problems.append(f"missing in ksqlDB: candle {key[0]} starting {key[1]} us")
    for key in sorted(actual.keys() - wanted.keys()):
        problems.append(f"extra in ksqlDB: candle {key[0]} starting {key[1]} us")
    for key in sorted(wanted.keys() & actual.keys()):
        candle, row = wanted[key], actual[key]
        where = f"{key[0]} @ {key[1]} us"
        pairs: list[tuple[str, Any, Any]] = [
            ("window end", candle.end_us, int(row["WINDOW_END"]) * 1000),
            ("open", candle.open, _decimal(row.get("OPEN"))),
            ("high", candle.high, _decimal(row.get("HIGH"))),
            ("low", candle.low, _decimal(row.get("LOW"))),
            ("close", candle.close, _decimal(row.get("CLOSE"))),
            ("volume", candle.volume, _decimal(row.get("VOLUME"))),
            ("trade count", candle.trade_count, row.get("TRADE_COUNT")),
            ("first trade id", candle.first_trade_id, row.get("FIRST_TRADE_ID")),
            ("last trade id", candle.last_trade_id, row.get("LAST_TRADE_ID")),
        ]
        for name, want, got in pairs:
            if want != got:
                problems.append(f"{where}: {name}: signaler {want}, ksqlDB {got}")
        vwap = _decimal(row.get("VWAP"))
        tolerance = VWAP_ABSOLUTE_TOLERANCE + abs(candle.vwap) * VWAP_RELATIVE_TOLERANCE
        if vwap is None or abs(vwap - candle.vwap) > tolerance:
            problems.append(f"{where}: vwap: signaler {candle.vwap}, ksqlDB {vwap}")
    return problems


def verify_variables(run_id: str) -> MigrationVariables:
    """Fresh names for every topic and object the migrations create."""
    defaults = MigrationVariables()
    values = {}
    for name, value in defaults.as_map().items():
        values[name] = (
            f"verify_{run_id}_{value}"
            if name.endswith("_topic")
            else f"VERIFY_{run_id.upper()}_{value}"
        )
    return MigrationVariables(**values)


def verify_records(fixture: Path | None, now_us: int, minutes: int = 4) -> list[FixtureRecord]:
    """The ticks verify writes, ending (closing heartbeats included) before `now_us`.

    Times must be near the broker's clock: Kafka 4 refuses timestamps more than an hour
    ahead (`log.message.timestamp.after.max.ms`), and a topic keeping 7 days deletes a
    2023 fixture within a minute of writing it. A capture is moved by whole minutes.
    """
    if fixture is None:
        body = synthetic_fixture(minutes=minutes, start_us=recent_start_us(minutes, now_us))
    else:
        body = shifted(load_fixture(fixture), now_us - 2 * INTERVAL_S * 1_000_000)
    return with_closing(body, INTERVAL_S, GRACE_S)


async def produce(bootstrap: str, topic: str, records: Sequence[FixtureRecord]) -> None:
    """Write records as the ingestor does: key = product, timestamp = exchange time."""
    from cryptopipeline.core.kafka import new_producer

    producer = new_producer(bootstrap, "ksql-verify")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic,
                value=record.value,
                key=record.product_id.encode(),
                timestamp_ms=record.timestamp_ms,
            )
    finally:
        await producer.stop()


FLUSH_EVERY_S = 0.5


async def read_candles(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float,
    *,
    raw_topic: str | None = None,
    flush: Sequence[FixtureRecord] = (),
) -> list[dict[str, Any]]:
    """Candle rows from `topic` until `expected` arrived (and 5 quiet seconds passed).

    ksqlDB's EMIT FINAL forwards closed windows only while processing a record, at most once
    per wall-clock second (docs/ksqldb.md, finding 3): a live feed's heartbeats do that every
    second; after a backlog `flush` (heartbeats at the last event time, which change no
    candle) is written to `raw_topic` every half second, as a live feed would.
    """
    from cryptopipeline.core.kafka import new_consumer

    consumer = new_consumer(
        bootstrap, "ksql-verify", topic,
        isolation_level="read_uncommitted", auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    quiet_until: float | None = None
    next_flush = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if flush and raw_topic and time.monotonic() >= next_flush:
                await produce(bootstrap, raw_topic, flush)
                next_flush = time.monotonic() + FLUSH_EVERY_S
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    if message.value is None:
                        continue  # a window with heartbeats only (HAVING): a tombstone
                    rows.append(json.loads(message.value, parse_float=Decimal))
            if len(rows) >= expected:
                # wait a little longer: a duplicate or extra candle would show up now
                quiet_until = quiet_until or time.monotonic() + 5
                if time.monotonic() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return rows


async def _cleanup(
    client: KsqlClient, variables: MigrationVariables, settings: KsqlSettings
) -> None:
    prefix = variables.raw_stream.split("_BTC_USD")[0]
    try:
        listing = await client.execute("LIST QUERIES;")
        for entity in listing:
            for query in entity.get("queries", []) or []:
                sinks = query.get("sinks", []) or []
                if any(str(s).upper().startswith(prefix) for s in sinks):
                    await client.execute(f"TERMINATE {query['id']};")
    except KsqlError as exc:
        log.warning("verify cleanup: listing or terminating queries failed: %s", exc)
    drops = [
        f"DROP STREAM IF EXISTS {variables.unified_stream} DELETE TOPIC;",
        f"DROP TABLE IF EXISTS {variables.latest_candle_table};",
        f"DROP STREAM IF EXISTS {variables.candles_by_product_stream} DELETE TOPIC;",
        f"DROP STREAM IF EXISTS {variables.signals_events_stream};",
        f"DROP TABLE IF EXISTS {variables.signals_table} DELETE TOPIC;",
        f"DROP STREAM IF EXISTS {variables.raw_stream} DELETE TOPIC;",
        f"DROP TABLE IF EXISTS {settings.migrations_table} DELETE TOPIC;",
        f"DROP STREAM IF EXISTS {settings.migrations_stream} DELETE TOPIC;",
    ]
    for statement in drops:
        try:
            await client.execute(statement)
        except KsqlError as exc:
            log.warning("verify cleanup: %s failed: %s", statement, exc)


async def run_verify(settings: KsqlSettings, options: VerifyOptions) -> int:
    """The `verify` command; returns the exit code (0 all candles equal)."""
    from cryptopipeline.core import KafkaSettings, PipelineSettings, TopicSpec
    from cryptopipeline.core.kafka import ensure_topics

    try:
        import cryptopipeline.market  # noqa: F401
    except ImportError as exc:
        print(
            f"cryptopipeline ksql verify: the signaler's candle code is not available ({exc})",
            file=sys.stderr,
        )
        return 1
    bootstrap = options.bootstrap_servers or PipelineSettings().kafka.bootstrap_servers
    run_id = uuid.uuid4().hex[:8]
    variables = verify_variables(run_id)
    verify_settings = settings.model_copy(
        update={
            "variables": variables,
            "migrations_stream": f"VERIFY_{run_id.upper()}_MIGRATION_EVENTS",
            "migrations_table": f"VERIFY_{run_id.upper()}_MIGRATION_SCHEMA_VERSIONS",
            "migrations_stream_topic": f"verify_{run_id}_migration_events",
            "migrations_table_topic": f"verify_{run_id}_migration_schema_versions",
        }
    )
    records = verify_records(options.fixture, time.time_ns() // 1000)
    expected = expected_candles(records)
    print(
        f"verify run {run_id}: {len(records)} records, {len(expected)} expected candles, "
        f"ksqlDB {settings.display_url()}, Kafka {bootstrap}"
    )
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap),
        [TopicSpec(name=variables.raw_topic, partitions=3)],
    )
    await produce(bootstrap, variables.raw_topic, records)
    try:
        report = await apply_migrations(verify_settings, options.migrations_dir)
        print(f"applied {list(report.applied)} on ksqlDB {report.server_version}")
        rows = await read_candles(
            bootstrap,
            variables.signals_topic,
            len(expected),
            options.timeout_s,
            raw_topic=variables.raw_topic,
            flush=closing_heartbeats(records, after_s=0),
        )
    except (KsqlError, MigrationError, MigrationFileError) as exc:
        print(f"cryptopipeline ksql verify: {exc}", file=sys.stderr)
        return 1
    finally:
        if not options.keep:
            async with KsqlClient(verify_settings) as client:
                await asyncio.shield(_cleanup(client, variables, verify_settings))
    problems = compare_candles(expected, rows)
    if problems:
        print(f"verify FAILED: {len(problems)} difference(s):", file=sys.stderr)
        for problem in problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"verify passed: {len(rows)} candles equal to the signaler's")
    return 0

"""The migrations and the runner on a real ksqlDB server (8.3.1, built from ../shared/ksqldb,
reading the test Kafka): applied from empty, a no-op the second time, status and validate as
the server's own tables say, changes refused, a bad statement refused with the server's
message, and the derived streams equal to the signaler's candles on a backlog and on a
live-paced feed, with a clean processing log.

Every test makes its own topic, stream, table and metadata names, so they share one server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from cryptopipeline.cli import main
from cryptopipeline.coinbase import format_time
from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.ksql import (
    ChecksumMismatchError,
    KsqlClient,
    KsqlSettings,
    MigrationFailedError,
    MigrationRecord,
    MigrationVariables,
    MissingMigrationError,
    MissingTopicError,
    apply_migrations,
    load_migrations,
    migration_status,
    validate_migrations,
)
from cryptopipeline.ksql._fixture import (
    MINUTE_US,
    FixtureRecord,
    closing_heartbeats,
    recent_start_us,
    record_from_message,
    synthetic_fixture,
    with_closing,
)
from cryptopipeline.ksql._metadata import MetadataStore, metadata_names
from cryptopipeline.ksql._prepare import prepare
from cryptopipeline.ksql._server import RunningKsqlServer
from cryptopipeline.ksql._split import CommandKind
from cryptopipeline.ksql._verify import (
    CandleLike,
    compare_candles,
    expected_candles,
    produce,
    read_candles,
    verify_variables,
)

pytestmark = [pytest.mark.kafka, pytest.mark.ksqldb]

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "ksqldb"
MINUTES = 10  # windows per product; the fixture has three products
BACKLOG_MINUTES = 50  # of event time, read by ksqlDB in a few wall-clock seconds


def fresh(url: str) -> tuple[KsqlSettings, MigrationVariables, str]:
    """Settings with fresh names for every object, metadata included; and the run's prefix."""
    run = uuid.uuid4().hex[:8]
    variables = verify_variables(run)
    settings = KsqlSettings(
        url=url,
        request_timeout_s=30,
        command_timeout_s=60,
        metadata_timeout_s=60,
        variables=variables,
        migrations_stream=f"T{run.upper()}_MIGRATION_EVENTS",
        migrations_table=f"T{run.upper()}_MIGRATION_SCHEMA_VERSIONS",
        migrations_stream_topic=f"t{run}_migration_events",
        migrations_table_topic=f"t{run}_migration_schema_versions",
    )
    return settings, variables, f"VERIFY_{run.upper()}_"


async def raw_topic(bootstrap: str, variables: MigrationVariables) -> None:
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap),
        [TopicSpec(name=variables.raw_topic, partitions=3)],
    )


async def server_rows(settings: KsqlSettings, key: str) -> dict[str, Any] | None:
    """The metadata table's row for `key`, read with our own pull query."""
    async with KsqlClient(settings) as client:
        rows = await client.pull(
            f"SELECT * FROM {settings.migrations_table} WHERE VERSION_KEY = '{key}';"
        )
    return rows[0] if rows else None


async def queries(settings: KsqlSettings, prefix: str) -> dict[str, str]:
    """query id -> state, for the persistent queries writing our objects."""
    async with KsqlClient(settings) as client:
        listing = await client.execute("SHOW QUERIES;")
    found = {}
    for entity in listing:
        for query in entity.get("queries", []) or []:
            if any(str(s).upper().startswith(prefix) for s in query.get("sinks", []) or []):
                found[str(query["id"])] = str(query.get("state", ""))
    return found


async def topic_values(bootstrap: str, topic: str, within_s: float = 60) -> list[dict[str, Any]]:
    """Every non-null value in `topic` up to its end offsets now, decimals exact."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    if message.value is not None:
                        value = json.loads(message.value, parse_float=Decimal)
                        value["_KEY"] = message.key.decode() if message.key else None
                        values.append(value)
            partitions = list(consumer.assignment())
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            behind = [p for p in partitions if await consumer.position(p) < ends[p]]
            if not behind:
                return values
        raise AssertionError(f"could not read {topic} to its end within {within_s}s")
    finally:
        await consumer.stop()


async def processing_errors(
    server: RunningKsqlServer, settings: KsqlSettings, bootstrap: str, prefix: str
) -> list[str]:
    """Processing-log entries of our queries: from the server's log file when the tests
    started the server (this build logs them there only), else from the processing-log topic
    <service id>ksql_processing_log."""
    ours = set(await queries(settings, prefix))

    def mine(text: str) -> bool:
        return any(query_id in text for query_id in ours) or prefix in text.upper()

    if server.log_file is not None:
        text = await asyncio.to_thread(server.log_file.read_text, "utf-8", "replace")
        return [line[:400] for line in text.splitlines() if " processing." in line and mine(line)]
    async with KsqlClient(settings) as client:
        service_id = (await client.info()).service_id
    records = await topic_values(bootstrap, f"{service_id}ksql_processing_log")
    return [text for r in records if mine(text := json.dumps(r, default=str)[:400])]


def market(minutes: int = MINUTES, heartbeat_every_s: int = 1) -> list[FixtureRecord]:
    """The seeded three-product fixture, ending (closing heartbeats included) before now;
    heartbeats thinned to one per `heartbeat_every_s` seconds."""
    now_us = time.time_ns() // 1000
    body = synthetic_fixture(minutes=minutes, start_us=recent_start_us(minutes, now_us))
    body = [
        r for r in body if r.kind == "ticker" or (r.time_us // 1_000_000) % heartbeat_every_s == 0
    ]
    return with_closing(body, 60, 2.0)


def per_product(candles: Sequence[CandleLike]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for candle in candles:
        counts[candle.product_id] = counts.get(candle.product_id, 0) + 1
    return counts


def later_tick(records: Sequence[FixtureRecord], product: str) -> FixtureRecord:
    """A trade of `product` after everything else in `records`."""
    last = max(r.time_us for r in records)
    trade_id = max(r.trade_id or 0 for r in records if r.product_id == product) + 1
    message = {
        "type": "ticker",
        "product_id": product,
        "price": "123.45",
        "side": "buy",
        "time": format_time(last + 1_000_000),
        "trade_id": trade_id,
        "last_size": "0.01000000",
    }
    built = record_from_message(message)
    assert built is not None
    return built


def check_unified(
    rows: Sequence[dict[str, Any]],
    records: Sequence[FixtureRecord],
    candles: Sequence[CandleLike],
) -> int:
    """Each tick once, with its own fields and, when it has one, a candle of its product equal
    to the signaler's; returns how many ticks carry a candle."""
    ticks = {(r.product_id, r.trade_id): r for r in records if r.kind == "ticker"}
    by_window = {(c.product_id, c.start_us // 1000): c for c in candles}
    seen = [(row["PRODUCT_ID"], row["TRADE_ID"]) for row in rows]
    assert sorted(seen) == sorted(ticks), "every tick exactly once, heartbeats never"
    joined = 0
    for row in rows:
        tick = ticks[(row["PRODUCT_ID"], row["TRADE_ID"])]
        assert (row["PRICE"], row["LAST_SIZE"]) == (tick.price, tick.size)
        if row["CANDLE_START"] is None:
            assert row["CANDLE_CLOSE"] is None
            continue
        joined += 1
        candle = by_window[(row["PRODUCT_ID"], row["CANDLE_START"])]
        assert row["CANDLE_END"] == candle.end_us // 1000
        assert (
            row["CANDLE_OPEN"],
            row["CANDLE_HIGH"],
            row["CANDLE_LOW"],
            row["CANDLE_CLOSE"],
            row["CANDLE_VOLUME"],
            row["CANDLE_TRADE_COUNT"],
        ) == (
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.trade_count,
        )
    return joined


async def wait_for_latest_candle(
    bootstrap: str, topic: str, candles: Sequence[CandleLike], timeout_s: float = 120
) -> None:
    """Until the re-keyed candle topic holds each product's last candle."""
    last: dict[str, int] = {}
    for candle in candles:
        last[candle.product_id] = max(last.get(candle.product_id, 0), candle.start_us // 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        latest: dict[str, int] = {}
        for value in await topic_values(bootstrap, topic):
            latest[value["_KEY"]] = max(latest.get(value["_KEY"], 0), value["WINDOW_START"])
        if latest == last:
            return
        await asyncio.sleep(0.5)  # polling a topic's content: nothing to await instead
    raise AssertionError(f"{topic} never held the last candles {last}")


# ---- the runner ---------------------------------------------------------------------------


def test_verify_passes_on_a_fresh_server(ksqldb_url: str, kafka_bootstrap: str) -> None:
    assert (
        main(["ksql", "verify", "--url", ksqldb_url, "--bootstrap-servers", kafka_bootstrap]) == 0
    )


async def test_every_migration_applies_from_empty_and_again_is_a_no_op(
    ksqldb_url: str, kafka_bootstrap: str
) -> None:
    settings, variables, prefix = fresh(ksqldb_url)
    await raw_topic(kafka_bootstrap, variables)
    report = await apply_migrations(settings, MIGRATIONS)
    assert report.applied == (1, 2, 3, 4) and report.current_version == 4
    assert report.created_metadata == (settings.migrations_stream, settings.migrations_table)
    assert report.server_version.startswith("8.3.1")
    async with KsqlClient(settings) as client:
        names = await client.source_names()
    assert {
        variables.raw_stream,
        variables.signals_table,
        variables.signals_events_stream,
        variables.candles_by_product_stream,
        variables.latest_candle_table,
        variables.unified_stream,
    } <= names
    running = await queries(settings, prefix)
    assert len(running) == 3 and set(running.values()) == {"RUNNING"}, running
    current = await server_rows(settings, "CURRENT")

    again = await apply_migrations(settings, MIGRATIONS)
    assert again.applied == () and again.current_version == 4
    assert again.created_metadata == ()
    assert await server_rows(settings, "CURRENT") == current  # nothing written
    assert await queries(settings, prefix) == running


async def test_status_and_validate_agree_with_the_servers_tables(
    ksqldb_url: str, kafka_bootstrap: str
) -> None:
    settings, variables, _ = fresh(ksqldb_url)
    before = await migration_status(settings, MIGRATIONS)
    assert not before.initialized and [v.state for v in before.versions] == ["PENDING"] * 4
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, MIGRATIONS)
    status = await validate_migrations(settings, MIGRATIONS)
    assert status.current_version == 4 and status.problems == ()
    for version in status.versions:
        row = await server_rows(settings, str(version.version))
        assert row is not None
        assert (row["STATE"], row["STARTED_ON"], row["COMPLETED_ON"]) == (
            version.state,
            version.started_on,
            version.completed_on,
        )
        assert version.state == "MIGRATED" and version.checksum_matches
        path = next(MIGRATIONS.glob(f"V{version.version:06d}__*.sql"))
        assert row["CHECKSUM"] == hashlib.md5(path.read_bytes()).hexdigest()
        assert row["NAME"] == version.name
    current = await server_rows(settings, "CURRENT")
    assert current is not None and (current["VERSION"], current["STATE"]) == ("4", "MIGRATED")


async def test_a_changed_applied_migration_is_refused(
    ksqldb_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings, variables, _ = fresh(ksqldb_url)
    folder = tmp_path / "ksqldb"
    shutil.copytree(MIGRATIONS, folder)
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, folder)
    changed = folder / "V000002__candle_signals_1m.sql"
    changed.write_text(changed.read_text() + "-- an edit after it was applied\n")
    with pytest.raises(ChecksumMismatchError, match=r"V000002__candle_signals_1m\.sql changed"):
        await validate_migrations(settings, folder)
    with pytest.raises(ChecksumMismatchError):
        await apply_migrations(settings, folder)
    status = await migration_status(settings, folder)
    assert [v.checksum_matches for v in status.versions] == [True, False, True, True]


async def test_a_syntax_error_is_refused_with_the_servers_message_and_not_recorded_applied(
    ksqldb_url: str, tmp_path: Path
) -> None:
    settings, _, _ = fresh(ksqldb_url)
    run = settings.migrations_stream.split("_")[0].lower()
    (tmp_path / "V000001__ok.sql").write_text(
        f"CREATE STREAM IF NOT EXISTS {run}_ok (A STRING) "
        f"WITH (KAFKA_TOPIC='{run}_ok', VALUE_FORMAT='JSON', PARTITIONS=1);\n"
    )
    (tmp_path / "V000002__typo.sql").write_text(
        "-- a typo the runner cannot see; the server's parser does\n"
        f"CREATE STREEM {run}_typo (A STRING) WITH (KAFKA_TOPIC='{run}_typo', PARTITIONS=1);\n"
    )
    with pytest.raises(MigrationFailedError) as caught:
        await apply_migrations(settings, tmp_path)
    error = caught.value
    assert (error.version, error.filename, error.line) == (2, "V000002__typo.sql", 2)
    assert "STREEM" in error.server_message  # ksqlDB's parser names the bad token
    assert error.server_message in str(error)
    status = await migration_status(settings, tmp_path)
    assert status.current_version == 1
    assert [v.state for v in status.versions] == ["MIGRATED", "ERROR"]
    assert "STREEM" in status.versions[1].error_reason
    row = await server_rows(settings, "2")
    assert row is not None and row["STATE"] == "ERROR"


# ---- the derived streams --------------------------------------------------------------------


async def test_candles_equal_the_signalers_over_a_backlog(
    ksqldb_server: RunningKsqlServer, kafka_bootstrap: str
) -> None:
    """An hour of ticks is in the topic before the queries start: a replay. ksqlDB reads it
    in a second or two, far more than the 62 s of stream time a window store keeps by
    default, so without RETENTION on the window this loses candles (finding 3)."""
    ksqldb_url = ksqldb_server.url
    settings, variables, prefix = fresh(ksqldb_url)
    records = market(minutes=BACKLOG_MINUTES, heartbeat_every_s=30)
    expected = expected_candles(records)
    assert min(per_product(expected).values()) >= 40
    await raw_topic(kafka_bootstrap, variables)
    await produce(kafka_bootstrap, variables.raw_topic, records)
    await apply_migrations(settings, MIGRATIONS)
    rows = await read_candles(
        kafka_bootstrap,
        variables.signals_topic,
        len(expected),
        240,
        raw_topic=variables.raw_topic,
        flush=closing_heartbeats(records, after_s=0),
    )
    assert compare_candles(expected, rows) == []

    # btc_usd_unified: every tick; one after the last candle closed carries that candle.
    await wait_for_latest_candle(kafka_bootstrap, variables.latest_candle_topic, expected)
    extra = [later_tick(records, product) for product in sorted(per_product(expected))]
    await produce(kafka_bootstrap, variables.raw_topic, extra)
    wanted = sum(1 for r in records if r.kind == "ticker") + len(extra)
    unified = await read_candles(kafka_bootstrap, variables.unified_topic, wanted, 120)
    extra_keys = {(e.product_id, e.trade_id) for e in extra}
    extra_rows = [row for row in unified if (row["PRODUCT_ID"], row["TRADE_ID"]) in extra_keys]
    check_unified([r for r in unified if r not in extra_rows], records, expected)
    last = {c.product_id: c for c in expected}
    for row in extra_rows:
        assert row["CANDLE_START"] == last[row["PRODUCT_ID"]].start_us // 1000
    assert await processing_errors(ksqldb_server, settings, kafka_bootstrap, prefix) == []


async def test_candles_equal_the_signalers_over_a_live_paced_feed(
    ksqldb_server: RunningKsqlServer, kafka_bootstrap: str
) -> None:
    """The queries run first; ticks arrive a minute of market at a time, each after the
    previous minute's candles are out, with heartbeats between as the feed sends them."""
    ksqldb_url = ksqldb_server.url
    settings, variables, prefix = fresh(ksqldb_url)
    records = market()
    expected = expected_candles(records)
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, MIGRATIONS)
    first_minute = min(r.time_us for r in records) // MINUTE_US
    chunks: dict[int, list[FixtureRecord]] = {}
    for record in records:
        chunks.setdefault(record.time_us // MINUTE_US - first_minute, []).append(record)
    sent: list[FixtureRecord] = []
    for minute in sorted(chunks):
        await produce(kafka_bootstrap, variables.raw_topic, chunks[minute])
        sent.extend(chunks[minute])
        closed = [c for c in expected if c.end_us + 2_000_000 <= max(r.time_us for r in sent)]
        rows = await read_candles(
            kafka_bootstrap,
            variables.signals_topic,
            len(closed),
            120,
            raw_topic=variables.raw_topic,
            flush=closing_heartbeats(sent, after_s=0),
        )
        assert compare_candles(closed, rows) == [], f"after minute {minute}"
    assert min(per_product(expected).values()) >= MINUTES

    wanted = sum(1 for r in records if r.kind == "ticker")
    unified = await read_candles(kafka_bootstrap, variables.unified_topic, wanted, 120)
    assert check_unified(unified, records, expected) > 0
    assert await processing_errors(ksqldb_server, settings, kafka_bootstrap, prefix) == []


async def test_verify_passes_on_a_server_holding_the_migrations(
    ksqldb_url: str, kafka_bootstrap: str
) -> None:
    """The default names (btc_usd, BTC_USD_STREAM, MIGRATION_EVENTS, ...) applied, then verify."""
    await ensure_topics(
        KafkaSettings(bootstrap_servers=kafka_bootstrap), [TopicSpec(name="btc_usd", partitions=3)]
    )
    report = await apply_migrations(KsqlSettings(url=ksqldb_url), MIGRATIONS)
    assert report.current_version == 4
    code = await asyncio.to_thread(
        main, ["ksql", "verify", "--url", ksqldb_url, "--bootstrap-servers", kafka_bootstrap]
    )
    assert code == 0


async def test_the_processing_log_check_sees_a_bad_tick(
    ksqldb_server: RunningKsqlServer, kafka_bootstrap: str
) -> None:
    """The clean-log assertions above can fail: a price that is not a number is logged."""
    ksqldb_url = ksqldb_server.url
    settings, variables, prefix = fresh(ksqldb_url)
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, MIGRATIONS)
    records = market(minutes=1)
    bad = json.loads(next(r for r in records if r.kind == "ticker").value)
    bad["price"] = "not-a-price"
    built = record_from_message({**bad, "price": "1"})
    assert built is not None
    poisoned = FixtureRecord(built.product_id, json.dumps(bad).encode(), built.time_us, "ticker")
    await produce(kafka_bootstrap, variables.raw_topic, [poisoned])
    deadline = time.monotonic() + 120
    while not (errors := await processing_errors(ksqldb_server, settings, kafka_bootstrap, prefix)):
        assert time.monotonic() < deadline, "the bad tick never reached the processing log"
        await asyncio.sleep(0.5)  # polling the log topic: nothing to await instead
    assert any("Error processing DECIMAL" in error for error in errors), errors


# ---- the runner's history rules, on the real server -------------------------------------------


def copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "ksqldb"
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


async def test_each_migration_is_recorded_like_ksql_migrations_records_it(
    ksqldb_url: str, kafka_bootstrap: str
) -> None:
    """Metadata topics default to <service id>ksql_<name>; each migration writes RUNNING then
    MIGRATED, under CURRENT and under its version, with the tool's columns."""
    settings, variables, _ = fresh(ksqldb_url)
    settings = settings.model_copy(
        update={"migrations_stream_topic": "", "migrations_table_topic": ""}
    )
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, MIGRATIONS, clock=lambda: 1_700_000_000.0)
    async with KsqlClient(settings) as client:
        service_id = (await client.info()).service_id
        (listing,) = await client.execute("SHOW TOPICS;")
    partitions = {t["name"]: len(t["replicaInfo"]) for t in listing["topics"]}
    events_topic = f"{service_id}ksql_{settings.migrations_stream}"
    assert partitions[events_topic] == 1
    assert f"{service_id}ksql_{settings.migrations_table}" in partitions
    events = await topic_values(kafka_bootstrap, events_topic)
    assert [(e["_KEY"], e["STATE"]) for e in events[:4]] == [
        ("CURRENT", "RUNNING"),
        ("1", "RUNNING"),
        ("CURRENT", "MIGRATED"),
        ("1", "MIGRATED"),
    ]
    assert len(events) == 16
    assert all(e["COMPLETED_ON"] == "" for e in events if e["STATE"] == "RUNNING")
    for version, path in enumerate(sorted(MIGRATIONS.glob("V*.sql")), start=1):
        row = await server_rows(settings, str(version))
        assert row is not None
        assert row["PREVIOUS"] == ("<none>" if version == 1 else str(version - 1))
        assert row["NAME"] == path.stem.split("__", 1)[1].replace("_", " ")
        assert row["ERROR_REASON"] == "N/A"
        assert row["STARTED_ON"] == row["COMPLETED_ON"] == "1700000000000"


async def test_only_a_new_migration_is_applied(
    ksqldb_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings, variables, prefix = fresh(ksqldb_url)
    folder = copy_migrations(tmp_path)
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, folder)
    before = await queries(settings, prefix)
    (folder / "V000005__ticks_per_product.sql").write_text(
        "-- V000005 counts ticks per product (a test migration).\n"
        f"CREATE TABLE IF NOT EXISTS {prefix}TICKS_PER_PRODUCT AS\n"
        "  SELECT PRODUCT_KEY, COUNT(*) AS N FROM ${raw_stream} GROUP BY PRODUCT_KEY;\n"
    )
    report = await apply_migrations(settings, folder)
    assert report.applied == (5,)
    after = await queries(settings, prefix)
    assert set(before) < set(after) and len(after) == len(before) + 1
    row = await server_rows(settings, "5")
    assert row is not None and (row["PREVIOUS"], row["STATE"]) == ("4", "MIGRATED")


async def test_a_failing_statement_is_recorded_as_error_stops_and_is_retried(
    ksqldb_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings, variables, prefix = fresh(ksqldb_url)
    folder = copy_migrations(tmp_path)
    broken = folder / "V000005__from_nowhere.sql"
    broken.write_text(
        "-- reads a stream that does not exist\n"
        f"CREATE STREAM IF NOT EXISTS {prefix}COPY AS SELECT * FROM {prefix}NO_SUCH_STREAM;\n"
    )
    (folder / "V000006__later.sql").write_text(f"DROP STREAM IF EXISTS {prefix}NOTHING;\n")
    await raw_topic(kafka_bootstrap, variables)
    with pytest.raises(MigrationFailedError) as caught:
        await apply_migrations(settings, folder)
    error = caught.value
    assert (error.version, error.filename, error.line) == (5, "V000005__from_nowhere.sql", 2)
    assert f"{prefix}NO_SUCH_STREAM" in error.server_message
    row = await server_rows(settings, "5")
    assert row is not None and row["STATE"] == "ERROR"
    assert f"{prefix}NO_SUCH_STREAM" in row["ERROR_REASON"]
    assert await server_rows(settings, "6") is None
    status = await migration_status(settings, folder)
    assert [v.state for v in status.versions] == ["MIGRATED"] * 4 + ["ERROR", "PENDING"]
    assert status.current_version == 4
    # An ERROR migration was never applied, so its file may still be fixed; a retry runs it.
    broken.write_text(
        f"CREATE STREAM IF NOT EXISTS {prefix}COPY AS SELECT * FROM {variables.raw_stream};\n"
    )
    report = await apply_migrations(settings, folder)
    assert report.applied == (5, 6)


async def test_a_missing_applied_file_and_a_skipped_file_are_refused(
    ksqldb_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings, variables, _ = fresh(ksqldb_url)
    folder = copy_migrations(tmp_path)
    await raw_topic(kafka_bootstrap, variables)
    await apply_migrations(settings, folder)
    last = folder / "V000004__unified_ticks.sql"
    last.unlink()
    with pytest.raises(MissingMigrationError, match=r"version 4 .* no file V000004"):
        await apply_migrations(settings, folder)


async def test_history_written_by_the_official_tool_is_continued_and_checked(
    ksqldb_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Versions 1 and 2 applied by `ksql-migrations` (its statements and metadata rows): the
    runner applies 3 and 4. History 1, 2, 3, 5 (the tool accepts gaps) with a 4 appearing
    later is refused."""
    settings, variables, _ = fresh(ksqldb_url)
    await raw_topic(kafka_bootstrap, variables)
    files = sorted(MIGRATIONS.glob("V*.sql"))

    async def record(store: MetadataStore, versions: Sequence[int], paths: dict[int, Path]) -> None:
        previous = "<none>"
        for version in versions:
            path = paths[version]
            for state, completed in (("RUNNING", ""), ("MIGRATED", "1618677817000")):
                await store.write(
                    MigrationRecord(
                        version_key=str(version),
                        version=str(version),
                        name=path.stem.split("__", 1)[1].replace("_", " "),
                        state=state,
                        checksum=hashlib.md5(path.read_bytes()).hexdigest(),
                        started_on="1618677816000",
                        completed_on=completed,
                        previous=previous,
                        error_reason="N/A",
                    )
                )
            previous = str(version)

    async with KsqlClient(settings) as client:
        store = MetadataStore(
            client, metadata_names(settings, (await client.info()).service_id), 60
        )
        await store.initialize()
        for path in files[:2]:  # what the tool sent for versions 1 and 2
            migration = load_migrations(MIGRATIONS)[int(path.name[1:7]) - 1]
            properties: dict[str, str] = {}
            for command, text in prepare(migration, variables.as_map()):
                if command.kind is CommandKind.SET:
                    properties[command.name] = command.value
                elif command.kind is CommandKind.STATEMENT:
                    await client.execute(text, properties)
        await record(store, [1, 2], {1: files[0], 2: files[1]})
    report = await apply_migrations(settings, MIGRATIONS)
    assert report.applied == (3, 4)

    other, _, _ = fresh(ksqldb_url)
    folder = copy_migrations(tmp_path)
    (folder / "V000005__later.sql").write_text("DROP STREAM IF EXISTS NOTHING_AT_ALL;\n")
    paths = {int(p.name[1:7]): p for p in folder.glob("V*.sql")}
    async with KsqlClient(other) as client:
        store = MetadataStore(client, metadata_names(other, (await client.info()).service_id), 60)
        await store.initialize()
        await record(store, [1, 2, 3, 5], paths)
    with pytest.raises(MissingMigrationError, match=r"V000004.* never applied"):
        await apply_migrations(other, folder)


async def test_a_missing_raw_topic_is_named_before_anything_is_written(
    ksqldb_url: str, kafka_bootstrap: str
) -> None:
    settings, variables, _ = fresh(ksqldb_url)
    with pytest.raises(MissingTopicError) as caught:
        await apply_migrations(settings, MIGRATIONS)
    message = str(caught.value)
    assert f"'{variables.raw_topic}' (read by V000001__raw_ticker_stream.sql:" in message
    assert "cryptopipeline topics create --bootstrap-servers" in message
    async with KsqlClient(settings) as client:
        assert settings.migrations_stream not in await client.source_names()
    await raw_topic(kafka_bootstrap, variables)
    assert (await apply_migrations(settings, MIGRATIONS)).applied == (1, 2, 3, 4)

"""The migration runner over real HTTP against the ksqlDB REST protocol double (not ksqlDB)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ksqldb_double import KsqlDouble

from cryptopipeline.ksql import (
    ChecksumMismatchError,
    KsqlSettings,
    KsqlTimeoutError,
    MigrationFailedError,
    MigrationFileError,
    MissingMigrationError,
    MissingTopicError,
    apply_migrations,
    migration_status,
    validate_migrations,
)

TABLE = "MIGRATION_SCHEMA_VERSIONS"
STREAM = "MIGRATION_EVENTS"
OBJECTS = {
    "BTC_USD_STREAM",
    "BTC_USD_SIGNALS",
    "BTC_USD_SIGNALS_STREAM",
    "BTC_USD_CANDLES_BY_PRODUCT",
    "BTC_USD_LATEST_CANDLE",
    "BTC_USD_UNIFIED",
}


def _events(double: KsqlDouble) -> list[dict[str, str | None]]:
    return double.rows.get(STREAM, [])


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("V*.sql"))


def _writes(double: KsqlDouble) -> list[str]:
    return [s for s in double.statements() if not s.upper().startswith("LIST")]


async def test_fresh_apply_creates_metadata_and_every_object(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    report = await apply_migrations(settings, migrations_dir, clock=lambda: 1_700_000_000.0)
    assert report.applied == (1, 2, 3, 4)
    assert report.current_version == 4
    assert report.created_metadata == (STREAM, TABLE)
    assert set(double.sources) >= OBJECTS
    # The metadata stream and table exactly as ksql-migrations initialize-metadata makes them.
    stream = double.sources[STREAM]
    assert stream.topic == "default_ksql_MIGRATION_EVENTS"
    for column in ("version_key  STRING KEY", "error_reason STRING", "PARTITIONS=1"):
        assert column in stream.statement
    assert double.sources[TABLE].topic == "default_ksql_MIGRATION_SCHEMA_VERSIONS"
    assert "latest_by_offset(error_reason) AS error_reason" in double.sources[TABLE].statement
    # Each migration: RUNNING then MIGRATED, under CURRENT and under its version.
    events = _events(double)
    assert [(e["VERSION_KEY"], e["STATE"]) for e in events[:4]] == [
        ("CURRENT", "RUNNING"),
        ("1", "RUNNING"),
        ("CURRENT", "MIGRATED"),
        ("1", "MIGRATED"),
    ]
    assert len(events) == 16
    files = _files(migrations_dir)
    for version, path in enumerate(files, start=1):
        row = double.table_row(TABLE, str(version))
        assert row is not None
        assert row["STATE"] == "MIGRATED"
        assert row["CHECKSUM"] == hashlib.md5(path.read_bytes()).hexdigest()
        assert row["NAME"] == path.stem.split("__", 1)[1].replace("_", " ")
        assert row["PREVIOUS"] == ("<none>" if version == 1 else str(version - 1))
        assert row["ERROR_REASON"] == "N/A"
        assert row["STARTED_ON"] == row["COMPLETED_ON"] == "1700000000000"
    running = [e for e in events if e["STATE"] == "RUNNING"]
    assert all(e["COMPLETED_ON"] == "" for e in running)
    current = double.table_row(TABLE, "CURRENT")
    assert current is not None and current["VERSION"] == "4"
    # Variables were substituted on the client: the server never saw ${...}.
    assert not any("${" in s for s in double.statements())
    assert "KAFKA_TOPIC = 'btc_usd_signals'" in double.sources["BTC_USD_SIGNALS"].statement


async def test_statements_carry_properties_and_command_sequence_numbers(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    await apply_migrations(settings, migrations_dir)
    ksql = [r.body for r in double.requests if r.path == "/ksql"]
    sequence = [body.get("commandSequenceNumber") for body in ksql]
    assert sequence[0] is None  # nothing to wait for yet
    seen = [s for s in sequence if s is not None]
    assert seen == sorted(seen) and 0 <= seen[-1] <= double.sequence
    first_ddl = next(i for i, b in enumerate(ksql) if b["ksql"].startswith("CREATE"))
    assert all(s is not None for s in sequence[first_ddl + 1 :])  # each waits for the last
    signals = next(b for b in ksql if "CREATE TABLE IF NOT EXISTS BTC_USD_SIGNALS" in b["ksql"])
    assert signals["streamsProperties"] == {"auto.offset.reset": "earliest"}
    raw = next(b for b in ksql if "CREATE STREAM IF NOT EXISTS BTC_USD_STREAM" in b["ksql"])
    assert raw["streamsProperties"] == {}
    assert all(r.method == "GET" for r in double.requests if r.path == "/info")


async def test_reapply_is_a_no_op(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    await apply_migrations(settings, migrations_dir)
    before_writes = len(_writes(double))
    before_events = len(_events(double))
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == ()
    assert report.current_version == 4
    assert len(_writes(double)) == before_writes
    assert len(_events(double)) == before_events


async def test_only_a_new_migration_is_applied(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    await apply_migrations(settings, migrations_dir)
    (migrations_dir / "V000005__ticks_per_product.sql").write_text(
        "-- V000005 creates a count of ticks per product (a test migration).\n"
        "CREATE TABLE IF NOT EXISTS TICKS_PER_PRODUCT AS\n"
        "  SELECT PRODUCT_KEY, COUNT(*) AS N FROM ${raw_stream} GROUP BY PRODUCT_KEY;\n"
    )
    before = len(_writes(double))
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (5,)
    new = _writes(double)[before:]
    creates = [s for s in new if s.upper().startswith("CREATE")]
    assert len(creates) == 1 and "TICKS_PER_PRODUCT" in creates[0]
    row = double.table_row(TABLE, "5")
    assert row is not None and row["PREVIOUS"] == "4" and row["STATE"] == "MIGRATED"


async def test_a_changed_applied_file_is_refused(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    await apply_migrations(settings, migrations_dir)
    path = migrations_dir / "V000002__candle_signals_1m.sql"
    path.write_text(path.read_text().replace("2 SECONDS", "5 SECONDS"))
    (migrations_dir / "V000005__later.sql").write_text("DROP STREAM IF EXISTS NOTHING_HERE;\n")
    before = len(_writes(double))
    with pytest.raises(ChecksumMismatchError, match=r"V000002__candle_signals_1m\.sql changed"):
        await apply_migrations(settings, migrations_dir)
    assert len(_writes(double)) == before  # nothing applied, nothing recorded
    with pytest.raises(ChecksumMismatchError):
        await validate_migrations(settings, migrations_dir)
    status = await migration_status(settings, migrations_dir)
    assert any("changed" in p for p in status.problems)
    assert [r.checksum_matches for r in status.versions[:4]] == [True, False, True, True]


async def test_a_missing_applied_file_is_refused(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    await apply_migrations(settings, migrations_dir)
    last = migrations_dir / "V000004__unified_ticks.sql"
    content = last.read_bytes()
    last.unlink()
    with pytest.raises(MissingMigrationError, match=r"version 4 .* no file V000004"):
        await apply_migrations(settings, migrations_dir)
    last.write_bytes(content)
    (migrations_dir / "V000003__latest_candle_table.sql").unlink()
    with pytest.raises(MigrationFileError, match=r"version 3 is missing"):
        await apply_migrations(settings, migrations_dir)


async def test_a_file_older_than_the_current_version_is_refused(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    """The official tool accepts gaps: history 1, 2, 3, 5 written by it, then a 4 appears."""
    from cryptopipeline.ksql._client import KsqlClient
    from cryptopipeline.ksql._metadata import MetadataStore, MigrationRecord
    from cryptopipeline.ksql._migrate import metadata_names

    (migrations_dir / "V000005__later.sql").write_text("DROP STREAM IF EXISTS NOTHING;\n")
    files = {int(p.name[1:7]): p for p in _files(migrations_dir)}
    async with KsqlClient(settings) as client:
        store = MetadataStore(client, metadata_names(settings, "default_"), 5.0)
        await store.initialize()
        previous = "<none>"
        for version in (1, 2, 3, 5):
            path = files[version]
            await store.write(
                MigrationRecord(
                    version_key=str(version),
                    version=str(version),
                    name=path.stem.split("__", 1)[1].replace("_", " "),
                    state="MIGRATED",
                    checksum=hashlib.md5(path.read_bytes()).hexdigest(),
                    started_on="1618677816000",
                    completed_on="1618677817000",
                    previous=previous,
                    error_reason="N/A",
                )
            )
            previous = str(version)
    with pytest.raises(MissingMigrationError, match=r"V000004.* never applied"):
        await apply_migrations(settings, migrations_dir)


async def test_a_failing_statement_is_recorded_as_error_and_stops(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    (migrations_dir / "V000005__later.sql").write_text("DROP STREAM IF EXISTS NOTHING;\n")
    double.fail_on(
        "CREATE STREAM IF NOT EXISTS BTC_USD_CANDLES_BY_PRODUCT",
        "Invalid Partition By: PRODUCT_ID cannot be resolved (from the double)",
    )
    with pytest.raises(MigrationFailedError) as failure:
        await apply_migrations(settings, migrations_dir)
    error = failure.value
    assert error.version == 3
    assert error.filename == "V000003__latest_candle_table.sql"
    text = (migrations_dir / error.filename).read_text().splitlines()
    assert text[error.line - 1].startswith(
        "CREATE STREAM IF NOT EXISTS ${candles_by_product_stream}"
    )
    assert f"V000003__latest_candle_table.sql:{error.line}" in str(error)
    assert "Invalid Partition By" in str(error) and "error_code 40001" in str(error)
    current = double.table_row(TABLE, "CURRENT")
    assert current is not None and current["STATE"] == "ERROR"
    row = double.table_row(TABLE, "3")
    assert row is not None and row["STATE"] == "ERROR"
    assert "Invalid Partition By" in str(row["ERROR_REASON"])
    assert "BTC_USD_CANDLES_BY_PRODUCT" in str(row["ERROR_REASON"])
    assert double.table_row(TABLE, "4") is None and double.table_row(TABLE, "5") is None
    assert "BTC_USD_UNIFIED" not in double.sources
    status = await migration_status(settings, migrations_dir)
    assert [r.state for r in status.versions] == [
        "MIGRATED",
        "MIGRATED",
        "ERROR",
        "PENDING",
        "PENDING",
    ]
    assert status.current_version == 2
    # Fixed on the server side: a retry re-runs version 3 (its statements are idempotent).
    double.clear_faults()
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (3, 4, 5)


async def test_a_server_timeout_names_file_and_line_and_a_retry_succeeds(
    double: KsqlDouble, migrations_dir: Path
) -> None:
    settings = KsqlSettings(url=double.url, request_timeout_s=0.5, metadata_timeout_s=5.0)
    double.delay_on("CREATE TABLE IF NOT EXISTS BTC_USD_SIGNALS", 1.5)
    with pytest.raises(MigrationFailedError) as failure:
        await apply_migrations(settings, migrations_dir)
    error = failure.value
    assert error.filename == "V000002__candle_signals_1m.sql"
    assert f"V000002__candle_signals_1m.sql:{error.line}: statement timed out" in str(error)
    assert "no answer within 0.5s" in str(error)
    row = double.table_row(TABLE, "2")
    assert row is not None and row["STATE"] == "ERROR"
    double.clear_faults()
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (2, 3, 4)


async def test_queued_commands_are_polled_on_the_status_endpoint(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    double.async_commands = True
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (1, 2, 3, 4)
    polled = [r.path for r in double.requests if r.path.startswith("/status/")]
    assert "/status/stream/%60BTC_USD_STREAM%60/create" in polled  # backticks URL-encoded


async def test_a_lagging_metadata_table_is_waited_for(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    double.stale_reads = 2
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (1, 2, 3, 4)
    assert (await apply_migrations(settings, migrations_dir)).applied == ()


async def test_a_missing_source_topic_is_named_with_the_command_that_creates_it(
    migrations_dir: Path,
) -> None:
    """On a real server `CREATE STREAM` over a missing topic fails ("Topic 'btc_usd' does not
    exist") after the metadata was made; the runner checks the topics first."""
    double = KsqlDouble(topics=set()).start()
    try:
        settings = KsqlSettings(url=double.url, request_timeout_s=5.0)
        with pytest.raises(MissingTopicError) as caught:
            await apply_migrations(settings, migrations_dir)
        message = str(caught.value)
        assert "'btc_usd'" in message and "V000001__raw_ticker_stream.sql:" in message
        assert "cryptopipeline topics create --bootstrap-servers" in message
        assert "btc_usd_signals" not in message  # made by V000002 itself
        assert _writes(double) == []  # not even the metadata stream
        double.topics.add("btc_usd")
        assert (await apply_migrations(settings, migrations_dir)).applied == (1, 2, 3, 4)
    finally:
        double.stop()


async def test_a_table_not_yet_materialized_is_retried(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    """ksqlDB answers the first pull queries on a new table with 40001 "not available yet"."""
    double.not_ready_for(3)
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (1, 2, 3, 4)
    assert double.not_ready_reads == 0


async def test_a_table_that_never_materializes_says_so(
    double: KsqlDouble, migrations_dir: Path
) -> None:
    settings = KsqlSettings(url=double.url, request_timeout_s=5.0, metadata_timeout_s=1.0)
    double.not_ready_for(10_000)
    with pytest.raises(KsqlTimeoutError) as caught:
        await apply_migrations(settings, migrations_dir)
    message = str(caught.value)
    assert "MIGRATION_SCHEMA_VERSIONS" in message and "not available yet" in message
    assert "after 1.0s" in message and "ksqlDB's log" in message


async def test_metadata_written_by_the_official_tool_is_continued(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    """Rows as `ksql-migrations apply` writes them for versions 1 and 2 (same stream, table,
    columns, checksum): the runner applies only 3 and 4."""
    from ksqldb_double import Source

    from cryptopipeline.ksql._client import KsqlClient
    from cryptopipeline.ksql._metadata import MetadataStore, MigrationRecord
    from cryptopipeline.ksql._migrate import metadata_names

    # What versions 1 and 2 left on the server when the other tool applied them.
    double.topics.add("btc_usd_signals")
    for name, kind, topic in (
        ("BTC_USD_STREAM", "STREAM", "btc_usd"),
        ("BTC_USD_SIGNALS", "TABLE", "btc_usd_signals"),
    ):
        double.sources[name] = Source(kind, name, topic, "(applied by ksql-migrations)")
    async with KsqlClient(settings) as client:
        store = MetadataStore(client, metadata_names(settings, "default_"), 5.0)
        await store.initialize()
        previous = "<none>"
        for path in _files(migrations_dir)[:2]:
            version = str(int(path.name[1:7]))
            for state, completed in (("RUNNING", ""), ("MIGRATED", "1618677817000")):
                await store.write(
                    MigrationRecord(
                        version_key=version,
                        version=version,
                        name=path.stem.split("__", 1)[1].replace("_", " "),
                        state=state,
                        checksum=hashlib.md5(path.read_bytes()).hexdigest(),
                        started_on="1618677816000",
                        completed_on=completed,
                        previous=previous,
                        error_reason="N/A",
                    )
                )
            previous = version
    report = await apply_migrations(settings, migrations_dir)
    assert report.applied == (3, 4)


async def test_an_undefined_variable_is_refused_before_anything_is_sent(
    double: KsqlDouble, settings: KsqlSettings, migrations_dir: Path
) -> None:
    (migrations_dir / "V000005__oops.sql").write_text(
        "-- uses a variable nobody defines\nCREATE STREAM IF NOT EXISTS ${nobody_defines_me} "
        "(A STRING) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON', PARTITIONS=1);\n"
    )
    with pytest.raises(
        MigrationFileError, match=r"V000005__oops.sql:2: variable \$\{nobody_defines_me\}"
    ):
        await apply_migrations(settings, migrations_dir)
    assert not [s for s in _writes(double) if "BTC_USD" in s]


async def test_variables_and_metadata_names_are_configurable(
    double: KsqlDouble, migrations_dir: Path
) -> None:
    double.topics.add("other_raw")
    settings = KsqlSettings(
        url=double.url,
        migrations_stream="OTHER_EVENTS",
        migrations_table="OTHER_VERSIONS",
        migrations_stream_topic="other_events",
        migrations_table_topic="other_versions",
    )
    report = await apply_migrations(
        settings, migrations_dir, variables={"raw_topic": "other_raw", "raw_stream": "OTHER_RAW"}
    )
    assert report.applied == (1, 2, 3, 4)
    assert double.sources["OTHER_RAW"].topic == "other_raw"
    assert double.sources["OTHER_EVENTS"].topic == "other_events"
    assert "FROM OTHER_RAW" in double.sources["BTC_USD_SIGNALS"].statement

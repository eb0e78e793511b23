"""The HTTP client and the runner on protocol answers a real server will not give on demand
(a timeout, commands left QUEUED, a lagging table, "not available yet"), and the exact
requests they send, over real HTTP against the ksqlDB REST protocol double (not ksqlDB).
What the migrations and the runner do on ksqlDB itself: test_ksqldb_server.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptopipeline.ksql import (
    KsqlSettings,
    KsqlTimeoutError,
    MigrationFailedError,
    MigrationFileError,
    apply_migrations,
)
from ksqldb_double import KsqlDouble

TABLE = "MIGRATION_SCHEMA_VERSIONS"


def _writes(double: KsqlDouble) -> list[str]:
    return [s for s in double.statements() if not s.upper().startswith("LIST")]


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


def test_migrate_says_which_command_creates_a_missing_topic(
    migrations_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptopipeline.cli import main

    double = KsqlDouble(topics=set()).start()
    try:
        code = main(
            ["ksql", "migrate", "--url", double.url, "--migrations-dir", str(migrations_dir)]
        )
    finally:
        double.stop()
    err = capsys.readouterr().err
    assert code == 1
    assert "no topic 'btc_usd'" in err and "cryptopipeline topics create" in err

"""The migration metadata `ksql-migrations` keeps in ksqlDB itself, read and written the same way.

A stream (default `MIGRATION_EVENTS`, one partition, JSON) receives one event per state change
of a migration, written twice: under the version's own key and under the key `CURRENT`. A table
(default `MIGRATION_SCHEMA_VERSIONS`) keeps `LATEST_BY_OFFSET` of every column per key. The
statements below are the ones `ksql-migrations initialize-metadata` runs, so either tool can
continue what the other started.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import Enum

from cryptopipeline.ksql._client import KsqlClient, KsqlServerError, KsqlTimeoutError
from cryptopipeline.ksql._settings import KsqlSettings

CURRENT_VERSION_KEY = "CURRENT"
NONE_VERSION = "<none>"
EMPTY_ERROR_REASON = "N/A"
COLUMNS = (
    "VERSION_KEY",
    "VERSION",
    "NAME",
    "STATE",
    "CHECKSUM",
    "STARTED_ON",
    "COMPLETED_ON",
    "PREVIOUS",
    "ERROR_REASON",
)


class MigrationState(Enum):
    """The states `ksql-migrations` records."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    MIGRATED = "MIGRATED"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """One row of the metadata table."""

    version_key: str
    version: str
    name: str
    state: str
    checksum: str
    started_on: str
    completed_on: str
    previous: str
    error_reason: str


def quote(value: str) -> str:
    """A ksqlDB string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class MetadataNames:
    """Where the metadata lives."""

    stream: str
    table: str
    stream_topic: str
    table_topic: str
    replicas: int

    def create_stream(self) -> str:
        return (
            f"CREATE STREAM {self.stream} (\n"
            "  version_key  STRING KEY,\n"
            "  version      STRING,\n"
            "  name         STRING,\n"
            "  state        STRING,\n"
            "  checksum     STRING,\n"
            "  started_on   STRING,\n"
            "  completed_on STRING,\n"
            "  previous     STRING,\n"
            "  error_reason STRING\n"
            ") WITH (\n"
            f"  KAFKA_TOPIC={quote(self.stream_topic)},\n"
            "  VALUE_FORMAT='JSON',\n"
            "  PARTITIONS=1,\n"
            f"  REPLICAS={self.replicas}\n"
            ");"
        )

    def create_table(self) -> str:
        aggregated = ",\n".join(
            f"    latest_by_offset({column.lower()}) AS {column.lower()}" for column in COLUMNS[1:]
        )
        return (
            f"CREATE TABLE {self.table}\n"
            f"  WITH (KAFKA_TOPIC={quote(self.table_topic)})\n"
            "  AS SELECT\n"
            "    version_key,\n"
            f"{aggregated}\n"
            f"  FROM {self.stream}\n"
            "  GROUP BY version_key;"
        )

    def insert(self, record: MigrationRecord) -> str:
        values = ", ".join(quote(getattr(record, column.lower())) for column in COLUMNS)
        return f"INSERT INTO {self.stream} ({', '.join(COLUMNS)}) VALUES ({values});"

    def select(self, version_key: str) -> str:
        return (
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} "
            f"WHERE VERSION_KEY = {quote(version_key)};"
        )


class MetadataStore:
    """Reads and writes migration records through a `KsqlClient`."""

    def __init__(self, client: KsqlClient, names: MetadataNames, timeout_s: float) -> None:
        self._client = client
        self.names = names
        self._timeout_s = timeout_s

    async def exists(self) -> tuple[bool, bool]:
        """Whether the metadata stream and table exist."""
        sources = await self._client.source_names()
        return self.names.stream.upper() in sources, self.names.table.upper() in sources

    async def initialize(self) -> list[str]:
        """Create whichever of the stream and table is missing; return what was created."""
        has_stream, has_table = await self.exists()
        created = []
        if not has_stream:
            await self._client.execute(self.names.create_stream())
            created.append(self.names.stream)
        if not has_table:
            # The table must see every event ever written, including any written before it.
            await self._client.execute(
                self.names.create_table(), {"ksql.streams.auto.offset.reset": "earliest"}
            )
            created.append(self.names.table)
        return created

    async def read(self, version_key: str) -> MigrationRecord | None:
        """The table's row for `version_key`, or None.

        A table ksqlDB has just created answers pull queries with HTTP 400, error_code 40001,
        "Materialized data for key [...] is not available yet. Please try again later." until
        its query has caught up, and then, for a moment while its state store opens, with
        HTTP 500, error_code 50000 ("internal error"; the log says "Failed to get value from
        materialized table"): both are retried for up to the metadata timeout.
        """
        sql = self.names.select(version_key)
        deadline = time.monotonic() + self._timeout_s
        delay = 0.1
        while True:
            try:
                rows = await self._client.pull(sql)
                break
            except KsqlServerError as exc:
                if not _not_available_yet(exc):
                    raise
                if time.monotonic() > deadline:
                    raise KsqlTimeoutError(
                        f"{self.names.table} is still not queryable after {self._timeout_s}s "
                        "(ksqlDB kept answering 'not available yet' or an internal error; "
                        f"last: {exc}). Its query may be stuck: check "
                        f"`SHOW QUERIES;` and ksqlDB's log, or raise "
                        "CRYPTOPIPELINE_KSQL__METADATA_TIMEOUT_S"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        if not rows:
            return None
        row = rows[0]
        return MigrationRecord(**{column.lower(): _text(row.get(column)) for column in COLUMNS})

    async def write(self, record: MigrationRecord) -> None:
        """Record a state change under `CURRENT` and under the version, like the tool."""
        for key in (CURRENT_VERSION_KEY, record.version):
            row = MigrationRecord(
                version_key=key,
                version=record.version,
                name=record.name,
                state=record.state,
                checksum=record.checksum,
                started_on=record.started_on,
                completed_on=record.completed_on,
                previous=record.previous,
                error_reason=record.error_reason,
            )
            await self._client.execute(self.names.insert(row))

    async def wait_for_state(self, version: str, state: MigrationState) -> None:
        """Wait until the table shows `state` for `version` (the table lags the stream)."""
        deadline = time.monotonic() + self._timeout_s
        delay = 0.05
        while True:
            record = await self.read(version)
            if record is not None and record.state == state.value:
                return
            if time.monotonic() > deadline:
                seen = record.state if record else "no row"
                raise KsqlTimeoutError(
                    f"{self.names.table} still shows {seen} for version {version} after "
                    f"{self._timeout_s}s (expected {state.value})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _not_available_yet(exc: KsqlServerError) -> bool:
    """ksqlDB's answers for a table whose state is not ready yet (both retriable)."""
    if exc.error_code == 40001:
        return "not available yet" in exc.server_message.lower()
    return exc.status == 500 and exc.error_code == 50000


def _text(value: object) -> str:
    return "" if value is None else str(value)


def metadata_names(settings: KsqlSettings, service_id: str) -> MetadataNames:
    """Metadata names and topics; topics default to `<service id>ksql_<name>` like the tool."""
    return MetadataNames(
        stream=settings.migrations_stream,
        table=settings.migrations_table,
        stream_topic=settings.migrations_stream_topic
        or f"{service_id}ksql_{settings.migrations_stream}",
        table_topic=settings.migrations_table_topic
        or f"{service_id}ksql_{settings.migrations_table}",
        replicas=settings.migrations_topic_replicas,
    )

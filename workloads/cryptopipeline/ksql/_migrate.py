"""Applying migrations: the library the CLI and the operator call.

The rules are those of `ksql-migrations apply --all`: the latest migrated version is read from
the metadata table (the `CURRENT` row, or its `PREVIOUS` when the current one is RUNNING or
ERROR), every applied version back to the first must still match its file's checksum
(`_history`), and the files after it are applied in version order, each recorded RUNNING,
then MIGRATED or ERROR. On top of that this runner refuses a file that is older than the
current version but was never applied, checks every file (syntax, variables) before sending
anything (`_prepare`), and waits for the table to show each MIGRATED before starting the next
migration. Listing and validating without changes is `_status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from cryptopipeline.ksql._client import (
    KsqlClient,
    KsqlError,
    KsqlServerError,
    KsqlTimeoutError,
)
from cryptopipeline.ksql._errors import MigrationFailedError, MissingTopicError
from cryptopipeline.ksql._files import MigrationFile, load_migrations
from cryptopipeline.ksql._history import latest_migrated, validate_history
from cryptopipeline.ksql._metadata import (
    EMPTY_ERROR_REASON,
    NONE_VERSION,
    MetadataStore,
    MigrationRecord,
    MigrationState,
    metadata_names,
)
from cryptopipeline.ksql._prepare import PreparedMigration, prepare, run_variables, source_topics
from cryptopipeline.ksql._settings import KsqlSettings
from cryptopipeline.ksql._split import Command, CommandKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What `apply_migrations` did."""

    applied: tuple[int, ...]
    current_version: int | None
    server_version: str
    created_metadata: tuple[str, ...] = ()


class _Runner:
    def __init__(
        self,
        settings: KsqlSettings,
        migrations_dir: Path,
        variables: Mapping[str, str] | None,
        transport: httpx.AsyncBaseTransport | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.migrations_dir = migrations_dir
        self.variables = run_variables(settings, variables)
        self.transport = transport
        self.clock = clock

    def _now_ms(self) -> str:
        return str(int(self.clock() * 1000))

    async def check_topics(self, client: KsqlClient, pending: list[PreparedMigration]) -> None:
        """Refuse, before anything is written, when a topic the pending migrations read is
        missing from the Kafka cluster ksqlDB uses (ksqlDB would fail the CREATE STREAM with
        "Topic '...' does not exist" half-way through)."""
        needed = source_topics(pending)
        if not needed:
            return
        existing: set[str] = set()
        for entity in await client.execute("LIST TOPICS;"):
            for topic in entity.get("topics", []) or []:
                if isinstance(topic, dict) and "name" in topic:
                    existing.add(str(topic["name"]))
        missing = {topic: where for topic, where in needed.items() if topic not in existing}
        if missing:
            names = ", ".join(f"{topic!r} (read by {where})" for topic, where in missing.items())
            raise MissingTopicError(
                f"the Kafka cluster ksqlDB uses has no topic {names}; nothing was applied. "
                "Create the pipeline's topics first: `cryptopipeline topics create "
                "--bootstrap-servers HOST:PORT` (with the pipeline's topic settings), or let "
                "the ingestor or the operator create them; then migrate again",
                topics=tuple(missing),
            )

    async def apply(self) -> MigrationReport:
        files = load_migrations(self.migrations_dir)
        # Every file is checked (syntax, variables) before anything is sent: a bad file must
        # not leave even the metadata stream behind.
        commands = {m.version: prepare(m, self.variables) for m in files}
        async with KsqlClient(self.settings, transport=self.transport) as client:
            info = await client.info()
            store = MetadataStore(
                client,
                metadata_names(self.settings, info.service_id),
                self.settings.metadata_timeout_s,
            )
            initialized = all(await store.exists())
            latest = await latest_migrated(store) if initialized else None
            if initialized:
                await validate_history(store, files, latest, self.migrations_dir)
            pending = [m for m in files if latest is None or m.version > latest]
            await self.check_topics(
                client, [PreparedMigration(m, commands[m.version]) for m in pending]
            )
            created = await store.initialize()
            if created:
                log.info("created migration metadata: %s", ", ".join(created))
                latest = await latest_migrated(store)
                await validate_history(store, files, latest, self.migrations_dir)
                pending = [m for m in files if latest is None or m.version > latest]
            prepared = [PreparedMigration(m, commands[m.version]) for m in pending]
            applied: list[int] = []
            previous = NONE_VERSION if latest is None else str(latest)
            for item in prepared:
                await self._apply_one(client, store, item, previous)
                applied.append(item.migration.version)
                previous = str(item.migration.version)
            current = int(previous) if previous != NONE_VERSION else None
            if not applied:
                log.info("no pending migrations; current version %s", current)
            return MigrationReport(
                applied=tuple(applied),
                current_version=current,
                server_version=info.version,
                created_metadata=tuple(created),
            )

    async def _apply_one(
        self, client: KsqlClient, store: MetadataStore, item: PreparedMigration, previous: str
    ) -> None:
        migration = item.migration
        log.info("applying %s (version %d)", migration.filename, migration.version)
        started = self._now_ms()
        record = MigrationRecord(
            version_key=str(migration.version),
            version=str(migration.version),
            name=migration.name,
            state=MigrationState.RUNNING.value,
            checksum=migration.checksum,
            started_on=started,
            completed_on="",
            previous=previous,
            error_reason=EMPTY_ERROR_REASON,
        )
        await store.write(record)
        properties: dict[str, str] = {}
        for command, text in item.commands:
            if command.kind is CommandKind.SET:
                properties[command.name] = command.value
                continue
            if command.kind is CommandKind.UNSET:
                properties.pop(command.name, None)
                continue
            if command.kind is not CommandKind.STATEMENT:
                continue
            try:
                await client.execute(text, properties)
            except KsqlError as exc:
                await self._fail(store, record, migration, command, text, exc)
        done = MigrationRecord(
            **{
                **_fields(record),
                "state": MigrationState.MIGRATED.value,
                "completed_on": self._now_ms(),
            }
        )
        await store.write(done)
        await store.wait_for_state(str(migration.version), MigrationState.MIGRATED)
        log.info("applied %s", migration.filename)

    async def _fail(
        self,
        store: MetadataStore,
        record: MigrationRecord,
        migration: MigrationFile,
        command: Command,
        text: str,
        exc: KsqlError,
    ) -> None:
        filename = migration.filename
        line = command.statement.line
        what = "timed out" if isinstance(exc, KsqlTimeoutError) else "failed"
        server_message = exc.server_message if isinstance(exc, KsqlServerError) else str(exc)
        reason = f"Failed to execute sql: {text} Error: {server_message}"
        message = (
            f"{filename}:{line}: statement {what}: {command.statement.first_line[:100]!r}: {exc}"
        )
        errored = MigrationRecord(
            **{
                **_fields(record),
                "state": MigrationState.ERROR.value,
                "completed_on": self._now_ms(),
                "error_reason": reason,
            }
        )
        try:
            await store.write(errored)
        except KsqlError as record_exc:
            message += f" (recording the ERROR state also failed: {record_exc})"
        log.error("%s", message)
        raise MigrationFailedError(
            message,
            version=int(record.version),
            filename=filename,
            line=line,
            server_message=server_message,
        ) from None


def _fields(record: MigrationRecord) -> dict[str, str]:
    return {name: getattr(record, name) for name in MigrationRecord.__slots__}


async def apply_migrations(
    settings: KsqlSettings,
    migrations_dir: Path,
    *,
    variables: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> MigrationReport:
    """Apply every pending migration in `migrations_dir`, in order; safe to call repeatedly.

    Raises `MigrationFileError` for a bad file (nothing sent), `ChecksumMismatchError` or
    `MissingMigrationError` when applied history and files disagree (nothing applied),
    `MigrationFailedError` when a statement fails (that migration recorded ERROR, later ones
    not applied), and `KsqlError` subclasses for connection problems and timeouts.
    `variables` override `settings.variables` (like `ksql-migrations apply --define`).
    """
    runner = _Runner(settings, migrations_dir, variables, transport, clock)
    return await runner.apply()

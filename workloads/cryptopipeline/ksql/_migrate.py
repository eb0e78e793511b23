"""Applying, listing and validating migrations: the library the CLI and the operator call.

The rules are those of `ksql-migrations apply --all`: the latest migrated version is read from
the metadata table (the `CURRENT` row, or its `PREVIOUS` when the current one is RUNNING or
ERROR), every applied version back to the first must still match its file's checksum, and the
files after it are applied in version order, each recorded RUNNING, then MIGRATED or ERROR.
On top of that this runner refuses a file that is older than the current version but was never
applied, checks every file (syntax, variables) before sending anything, and waits for the
table to show each MIGRATED before starting the next migration.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cryptopipeline.ksql._client import (
    KsqlClient,
    KsqlError,
    KsqlServerError,
    KsqlTimeoutError,
)
from cryptopipeline.ksql._files import MigrationFile, MigrationFileError, load_migrations
from cryptopipeline.ksql._metadata import (
    CURRENT_VERSION_KEY,
    EMPTY_ERROR_REASON,
    NONE_VERSION,
    MetadataNames,
    MetadataStore,
    MigrationRecord,
    MigrationState,
)
from cryptopipeline.ksql._settings import KsqlSettings
from cryptopipeline.ksql._split import (
    Command,
    CommandKind,
    SqlSyntaxError,
    UndefinedVariableError,
    classify,
    substitute,
)

log = logging.getLogger(__name__)


class MigrationError(KsqlError):
    """The runner refuses to go on; the message says why and what to do."""


class ChecksumMismatchError(MigrationError):
    """An applied migration's file changed since it was applied."""


class MissingMigrationError(MigrationError):
    """An applied version has no file, or a file was skipped over."""


class MissingTopicError(MigrationError):
    """A topic a pending migration declares a stream or table over does not exist."""

    def __init__(self, message: str, *, topics: tuple[str, ...]) -> None:
        super().__init__(message)
        self.topics = topics


class MigrationFailedError(MigrationError):
    """A statement of a migration failed; the migration is recorded as ERROR."""

    def __init__(
        self, message: str, *, version: int, filename: str, line: int, server_message: str
    ) -> None:
        super().__init__(message)
        self.version = version
        self.filename = filename
        self.line = line
        self.server_message = server_message


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What `apply_migrations` did."""

    applied: tuple[int, ...]
    current_version: int | None
    server_version: str
    created_metadata: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """One migration as the files and the server see it."""

    version: int
    name: str
    filename: str | None
    state: str
    checksum_matches: bool | None
    started_on: str = ""
    completed_on: str = ""
    error_reason: str = ""


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """The state of every known migration, and whether the metadata exists yet."""

    current_version: int | None
    server_version: str
    initialized: bool
    versions: tuple[VersionStatus, ...] = field(default_factory=tuple)
    problems: tuple[str, ...] = ()


_CREATE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:SOURCE\s+)?(?:STREAM|TABLE)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
_AS_SELECT = re.compile(r"\bAS\s+SELECT\b", re.IGNORECASE)
_KAFKA_TOPIC = re.compile(r"\bKAFKA_TOPIC\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_PARTITIONS = re.compile(r"\bPARTITIONS\s*=", re.IGNORECASE)


def source_topics(prepared: list[_Prepared]) -> dict[str, str]:
    """Topics the migrations declare a stream or table over without creating them, with the
    `file:line` of the first such declaration.

    A `CREATE STREAM|TABLE ... WITH (KAFKA_TOPIC=...)` without `AS SELECT` and without
    `PARTITIONS` needs its topic to exist; a query's sink (`AS SELECT`) or a declaration with
    `PARTITIONS` creates it, for itself and for the statements after it.
    """
    made: set[str] = set()
    needed: dict[str, str] = {}
    for item in prepared:
        for command, text in item.commands:
            if command.kind is not CommandKind.STATEMENT:
                continue
            create = _CREATE.match(text)
            if create is None:
                continue
            topic_match = _KAFKA_TOPIC.search(text)
            name = create[1].strip("`") if create[1].startswith("`") else create[1].upper()
            topic = topic_match[1].replace("''", "'") if topic_match else name
            if _AS_SELECT.search(text) or _PARTITIONS.search(text):
                made.add(topic)
            elif topic not in made and topic not in needed:
                needed[topic] = f"{item.migration.filename}:{command.statement.line}"
    return needed


@dataclass(frozen=True, slots=True)
class _Prepared:
    migration: MigrationFile
    commands: list[tuple[Command, str]]  # (command, text to send after substitution)


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


def prepare(migration: MigrationFile, variables: Mapping[str, str]) -> list[tuple[Command, str]]:
    """Split, classify and substitute one file; raise `MigrationFileError` naming the line."""
    scope = {key.lower(): value for key, value in variables.items()}
    prepared: list[tuple[Command, str]] = []
    for statement in migration.statements():
        try:
            command = classify(statement)
            if command.kind is CommandKind.DEFINE:
                scope[command.name] = substitute(command.value, scope)
            elif command.kind is CommandKind.UNDEFINE:
                scope.pop(command.name, None)
            text = (
                substitute(statement.text, scope) if command.kind is CommandKind.STATEMENT else ""
            )
        except SqlSyntaxError as exc:
            raise MigrationFileError(f"{migration.filename}: {exc}") from None
        except UndefinedVariableError as exc:
            raise MigrationFileError(
                f"{migration.filename}:{statement.line}: {exc}; give it a value "
                f"(CRYPTOPIPELINE_KSQL__VARIABLES__{exc.name.upper()} or --define "
                f"{exc.name}=VALUE)"
            ) from None
        prepared.append((command, text))
    return prepared


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
        self.variables = {**settings.variables.as_map(), **(variables or {})}
        self.transport = transport
        self.clock = clock

    def _now_ms(self) -> str:
        return str(int(self.clock() * 1000))

    async def latest_migrated(self, store: MetadataStore) -> int | None:
        current = await store.read(CURRENT_VERSION_KEY)
        if current is None:
            return None
        if current.state == MigrationState.MIGRATED.value:
            return int(current.version)
        if current.previous in ("", NONE_VERSION):
            return None
        previous = await store.read(current.previous)
        if previous is None or previous.state != MigrationState.MIGRATED.value:
            seen = previous.state if previous else "no row"
            raise MigrationError(
                f"metadata is inconsistent: version {current.version} is {current.state} and "
                f"its previous version {current.previous} is {seen}, not MIGRATED"
            )
        return int(current.previous)

    async def validate(
        self, store: MetadataStore, files: list[MigrationFile], latest: int | None
    ) -> list[int]:
        """Check every applied version against its file; return the applied versions."""
        by_version = {m.version: m for m in files}
        applied: list[int] = []
        version: str = NONE_VERSION if latest is None else str(latest)
        next_version: str | None = None
        while version != NONE_VERSION:
            record = await store.read(version)
            if record is None:
                raise MissingMigrationError(
                    f"version {version} is named as applied but has no row in "
                    f"{store.names.table}; the metadata is damaged"
                )
            if record.state != MigrationState.MIGRATED.value:
                raise MigrationError(
                    f"version {version} (previous of {next_version}) is {record.state}, "
                    "not MIGRATED"
                )
            migration = by_version.get(int(version))
            if migration is None:
                raise MissingMigrationError(
                    f"version {version} ({record.name!r}) was applied but no file "
                    f"V{int(version):06d}__*.sql exists in {self.migrations_dir}; restore it "
                    "(applied migrations are never removed)"
                )
            if migration.checksum != record.checksum:
                raise ChecksumMismatchError(
                    f"{migration.filename} changed after it was applied: the server recorded "
                    f"checksum {record.checksum}, the file now has {migration.checksum}. "
                    "Applied migrations must not change; restore the file and put the change "
                    "in a new migration"
                )
            applied.append(int(version))
            next_version = version
            version = record.previous or NONE_VERSION
        applied.reverse()
        if latest is not None:
            skipped = [m for m in files if m.version < latest and m.version not in applied]
            if skipped:
                names = ", ".join(m.filename for m in skipped)
                raise MissingMigrationError(
                    f"{names}: older than the current version {latest} but never applied; "
                    "renumber the new file after the current version"
                )
        return applied

    async def check_topics(self, client: KsqlClient, pending: list[_Prepared]) -> None:
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
            latest = await self.latest_migrated(store) if initialized else None
            if initialized:
                await self.validate(store, files, latest)
            pending = [m for m in files if latest is None or m.version > latest]
            await self.check_topics(client, [_Prepared(m, commands[m.version]) for m in pending])
            created = await store.initialize()
            if created:
                log.info("created migration metadata: %s", ", ".join(created))
                latest = await self.latest_migrated(store)
                await self.validate(store, files, latest)
                pending = [m for m in files if latest is None or m.version > latest]
            prepared = [_Prepared(m, commands[m.version]) for m in pending]
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
        self, client: KsqlClient, store: MetadataStore, item: _Prepared, previous: str
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

    async def status(self, *, strict: bool) -> MigrationStatus:
        files = load_migrations(self.migrations_dir)
        for migration in files:
            prepare(migration, self.variables)
        async with KsqlClient(self.settings, transport=self.transport) as client:
            info = await client.info()
            store = MetadataStore(
                client,
                metadata_names(self.settings, info.service_id),
                self.settings.metadata_timeout_s,
            )
            has_stream, has_table = await store.exists()
            if not (has_stream and has_table):
                versions = tuple(
                    VersionStatus(m.version, m.name, m.filename, MigrationState.PENDING.value, None)
                    for m in files
                )
                return MigrationStatus(None, info.version, False, versions)
            problems: list[str] = []
            latest: int | None = None
            try:
                latest = await self.latest_migrated(store)
                await self.validate(store, files, latest)
            except MigrationError as exc:
                if strict:
                    raise
                problems.append(str(exc))
            rows: list[VersionStatus] = []
            seen: set[int] = set()
            for migration in files:
                record = await store.read(str(migration.version))
                seen.add(migration.version)
                if record is None:
                    rows.append(
                        VersionStatus(
                            migration.version,
                            migration.name,
                            migration.filename,
                            MigrationState.PENDING.value,
                            None,
                        )
                    )
                    continue
                rows.append(
                    VersionStatus(
                        migration.version,
                        migration.name,
                        migration.filename,
                        record.state,
                        record.checksum == migration.checksum,
                        record.started_on,
                        record.completed_on,
                        "" if record.error_reason == EMPTY_ERROR_REASON else record.error_reason,
                    )
                )
            return MigrationStatus(latest, info.version, True, tuple(rows), tuple(problems))


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


async def migration_status(
    settings: KsqlSettings,
    migrations_dir: Path,
    *,
    variables: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> MigrationStatus:
    """Every migration's state on the server next to its file; never changes anything.

    Disagreements (changed or missing files) are listed in `problems` rather than raised.
    """
    runner = _Runner(settings, migrations_dir, variables, transport, time.time)
    return await runner.status(strict=False)


async def validate_migrations(
    settings: KsqlSettings,
    migrations_dir: Path,
    *,
    variables: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> MigrationStatus:
    """Like `migration_status`, but raise the first disagreement (as `apply` would)."""
    runner = _Runner(settings, migrations_dir, variables, transport, time.time)
    return await runner.status(strict=True)

"""Every migration's state on the server next to its file (`ksql status`, `ksql validate`);
never changes anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cryptopipeline.ksql._client import KsqlClient
from cryptopipeline.ksql._errors import MigrationError
from cryptopipeline.ksql._files import load_migrations
from cryptopipeline.ksql._history import latest_migrated, validate_history
from cryptopipeline.ksql._metadata import (
    EMPTY_ERROR_REASON,
    MetadataStore,
    MigrationState,
    metadata_names,
)
from cryptopipeline.ksql._prepare import prepare, run_variables
from cryptopipeline.ksql._settings import KsqlSettings


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


async def _status(
    settings: KsqlSettings,
    migrations_dir: Path,
    variables: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
    *,
    strict: bool,
) -> MigrationStatus:
    """`strict`: raise the first disagreement between server and files, else list them."""
    files = load_migrations(migrations_dir)
    values = run_variables(settings, variables)
    for migration in files:
        prepare(migration, values)
    async with KsqlClient(settings, transport=transport) as client:
        info = await client.info()
        store = MetadataStore(
            client,
            metadata_names(settings, info.service_id),
            settings.metadata_timeout_s,
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
            latest = await latest_migrated(store)
            await validate_history(store, files, latest, migrations_dir)
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
    return await _status(settings, migrations_dir, variables, transport, strict=False)


async def validate_migrations(
    settings: KsqlSettings,
    migrations_dir: Path,
    *,
    variables: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> MigrationStatus:
    """Like `migration_status`, but raise the first disagreement (as `apply` would)."""
    return await _status(settings, migrations_dir, variables, transport, strict=True)

"""What the server says was applied, checked against the files, by `ksql-migrations`' rules:
the latest migrated version is the `CURRENT` row (or its `PREVIOUS` when the current one is
RUNNING or ERROR), and every applied version back to the first must still match its file."""

from __future__ import annotations

from pathlib import Path

from cryptopipeline.ksql._errors import (
    ChecksumMismatchError,
    MigrationError,
    MissingMigrationError,
)
from cryptopipeline.ksql._files import MigrationFile
from cryptopipeline.ksql._metadata import (
    CURRENT_VERSION_KEY,
    NONE_VERSION,
    MetadataStore,
    MigrationState,
)


async def latest_migrated(store: MetadataStore) -> int | None:
    """The latest MIGRATED version (None: none yet); refuse metadata that contradicts itself."""
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


async def validate_history(
    store: MetadataStore, files: list[MigrationFile], latest: int | None, migrations_dir: Path
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
                f"version {version} (previous of {next_version}) is {record.state}, not MIGRATED"
            )
        migration = by_version.get(int(version))
        if migration is None:
            raise MissingMigrationError(
                f"version {version} ({record.name!r}) was applied but no file "
                f"V{int(version):06d}__*.sql exists in {migrations_dir}; restore it "
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

"""Migration files on disk: `V<six digits>__<name>.sql`, their statements and checksums.

Naming, version parsing and the checksum follow Confluent's `ksql-migrations` tool: the
version is the six-digit number, the name is the rest with `_` read as a space, and the
checksum is the lowercase hex MD5 of the file's bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptopipeline.ksql._split import SqlSyntaxError, Statement, split_statements

FILE_PATTERN = re.compile(r"^V([0-9]{6})__(.+)\.sql$")


class MigrationFileError(ValueError):
    """A migrations folder or file is not usable (bad name, duplicate version, bad SQL)."""


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One versioned migration file, read once."""

    version: int
    name: str
    path: Path
    content: bytes

    @property
    def checksum(self) -> str:
        return checksum(self.content)

    @property
    def filename(self) -> str:
        return self.path.name

    def statements(self) -> list[Statement]:
        try:
            return split_statements(self.content.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise MigrationFileError(f"{self.filename}: not UTF-8 text ({exc})") from None
        except SqlSyntaxError as exc:
            raise MigrationFileError(f"{self.filename}: {exc}") from None


def checksum(content: bytes) -> str:
    """The checksum `ksql-migrations` stores for a file: hex MD5 of its bytes."""
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def load_migrations(directory: Path) -> list[MigrationFile]:
    """Every migration in `directory`, by version. Other files (README.md) are ignored.

    Refused, before anything is sent anywhere: a name ending in `.sql` that is not
    `V<six digits>__<name>.sql`; such a name on something that is not a regular file (a
    directory or a FIFO would otherwise be skipped as if absent, or block the reader);
    two files of one version; a gap in the versions (they run 1, 2, 3, ... so that a
    missing file is never mistaken for one not written yet); a file that is not UTF-8, does
    not split into statements, or holds none.
    """
    if not directory.is_dir():
        raise MigrationFileError(f"{directory} is not a directory")
    migrations: dict[int, MigrationFile] = {}
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(".sql"):
            continue
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationFileError(
                f"{path.name}: expected the name V<six digits>__<name>.sql (e.g. V000001__x.sql)"
            )
        if not path.is_file():  # follows symlinks: a link to a regular file is fine
            raise MigrationFileError(
                f"{path.name}: not a regular file ({_kind(path)}); a migration is a file"
            )
        version = int(match[1])
        if version <= 0:
            raise MigrationFileError(f"{path.name}: versions start at 1")
        if version in migrations:
            raise MigrationFileError(
                f"two files have version {version}: {migrations[version].path.name}, {path.name}"
            )
        migration = MigrationFile(
            version=version, name=match[2].replace("_", " "), path=path, content=path.read_bytes()
        )
        if not migration.statements():
            raise MigrationFileError(
                f"{path.name}: no statements (empty or only comments); a migration must do "
                "something"
            )
        migrations[version] = migration
    ordered = [migrations[v] for v in sorted(migrations)]
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise MigrationFileError(
                f"version {expected} is missing: the next file is {migration.filename}; "
                "versions run 1, 2, 3, ... without gaps"
            )
    return ordered


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a directory"
    if path.is_fifo():
        return "a FIFO"
    if path.is_symlink() and not path.exists():
        return "a broken symlink"
    return "a special file"

"""ksqlDB layer: apply the versioned migrations in ksqldb/ and record them in ksqlDB itself.

Compatible with Confluent's `ksql-migrations` metadata; `cryptopipeline ksql` is the CLI, whose
`verify` compares ksqlDB's candles with the signaler's on a real server (`_server` runs one).
"""

from cryptopipeline.ksql._client import (
    KsqlClient,
    KsqlConnectionError,
    KsqlError,
    KsqlServerError,
    KsqlTimeoutError,
    ServerInfo,
)
from cryptopipeline.ksql._errors import (
    ChecksumMismatchError,
    MigrationError,
    MigrationFailedError,
    MissingMigrationError,
    MissingTopicError,
)
from cryptopipeline.ksql._files import MigrationFile, MigrationFileError, checksum, load_migrations
from cryptopipeline.ksql._metadata import MigrationRecord, MigrationState
from cryptopipeline.ksql._migrate import MigrationReport, apply_migrations
from cryptopipeline.ksql._settings import KsqlSettings, MigrationVariables
from cryptopipeline.ksql._split import (
    SqlSyntaxError,
    Statement,
    UndefinedVariableError,
    split_statements,
    substitute,
)
from cryptopipeline.ksql._status import (
    MigrationStatus,
    VersionStatus,
    migration_status,
    validate_migrations,
)
from cryptopipeline.ksql.cli import add_parser, run

__all__ = [
    "ChecksumMismatchError",
    "KsqlClient",
    "KsqlConnectionError",
    "KsqlError",
    "KsqlServerError",
    "KsqlSettings",
    "KsqlTimeoutError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationFile",
    "MigrationFileError",
    "MigrationRecord",
    "MigrationReport",
    "MigrationState",
    "MigrationStatus",
    "MigrationVariables",
    "MissingMigrationError",
    "MissingTopicError",
    "ServerInfo",
    "SqlSyntaxError",
    "Statement",
    "UndefinedVariableError",
    "VersionStatus",
    "add_parser",
    "apply_migrations",
    "checksum",
    "load_migrations",
    "migration_status",
    "run",
    "split_statements",
    "substitute",
    "validate_migrations",
]

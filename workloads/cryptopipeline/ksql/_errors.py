"""Why the migration runner refuses to go on: each error says what and what to do."""

from __future__ import annotations

from cryptopipeline.ksql._client import KsqlError


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

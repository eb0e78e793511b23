"""Migration files made ready to send, with no I/O: split into statements, classified,
`${...}` variables substituted (every file is checked before anything is sent), and the
topics the pending migrations need to exist."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptopipeline.ksql._files import MigrationFile, MigrationFileError
from cryptopipeline.ksql._settings import KsqlSettings
from cryptopipeline.ksql._split import (
    Command,
    CommandKind,
    SqlSyntaxError,
    UndefinedVariableError,
    classify,
    substitute,
)

_CREATE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:SOURCE\s+)?(?:STREAM|TABLE)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
_AS_SELECT = re.compile(r"\bAS\s+SELECT\b", re.IGNORECASE)
_KAFKA_TOPIC = re.compile(r"\bKAFKA_TOPIC\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_PARTITIONS = re.compile(r"\bPARTITIONS\s*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PreparedMigration:
    """A migration file split, classified and substituted, ready to send."""

    migration: MigrationFile
    commands: list[tuple[Command, str]]  # (command, text to send after substitution)


def run_variables(settings: KsqlSettings, variables: Mapping[str, str] | None) -> dict[str, str]:
    """The `${...}` values of a run: the settings', overridden by the caller's (`--define`)."""
    return {**settings.variables.as_map(), **(variables or {})}


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


def source_topics(prepared: list[PreparedMigration]) -> dict[str, str]:
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

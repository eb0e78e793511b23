"""Splitting a migration file into ksqlDB statements, and the client-side commands in it.

The rules follow ksqlDB's lexer: `--` comments run to the end of the line, `/* */` comments
may span lines, string literals are single-quoted with `''` as an escaped quote, and
identifiers may be quoted with backticks or double quotes. A semicolon ends a statement only
outside all of those. Comments are dropped from the statement text (as `ksql-migrations` does),
newlines are kept so a server's line numbers still point into the statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class SqlSyntaxError(ValueError):
    """A migration file cannot be split into statements (unterminated string, comment, ...)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a file: its text (comments removed, ending in `;`) and where it starts."""

    text: str
    line: int

    @property
    def first_line(self) -> str:
        """The statement's first line, for error messages."""
        return self.text.strip().splitlines()[0] if self.text.strip() else ""


def split_statements(sql: str) -> list[Statement]:
    """Split `sql` into statements. Raises `SqlSyntaxError` naming the line of the problem."""
    statements: list[Statement] = []
    current: list[str] = []
    start_line: int | None = None
    line = 1
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        if char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end  # the newline itself is kept below
            continue
        if char == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise SqlSyntaxError("unterminated /* comment", line)
            comment = sql[i : end + 2]
            newlines = comment.count("\n")
            line += newlines
            current.append("\n" * newlines if newlines else " ")
            i = end + 2
            continue
        if char in "'`\"":
            end = _closing_quote(sql, i)
            if end < 0:
                kind = {"'": "string literal", "`": "quoted identifier", '"': "quoted identifier"}
                raise SqlSyntaxError(f"unterminated {kind[char]} starting here", line)
            if start_line is None:
                start_line = line
            token = sql[i : end + 1]
            current.append(token)
            line += token.count("\n")
            i = end + 1
            continue
        if char == ";":
            current.append(";")
            text = "".join(current).strip()
            if text == ";":
                raise SqlSyntaxError("empty statement (a lone semicolon)", line)
            statements.append(Statement(text=text, line=start_line or line))
            current = []
            start_line = None
            i += 1
            continue
        if char == "\n":
            line += 1
        elif not char.isspace() and start_line is None:
            start_line = line
        current.append(char)
        i += 1
    rest = "".join(current).strip()
    if rest:
        raise SqlSyntaxError(
            f"statement has no terminating semicolon: {rest.splitlines()[0][:80]!r}",
            start_line or line,
        )
    return statements


def _closing_quote(sql: str, start: int) -> int:
    """Index of the quote closing the literal opened at `start`; a doubled quote is an escape."""
    quote = sql[start]
    i = start + 1
    while True:
        end = sql.find(quote, i)
        if end < 0:
            return -1
        if end + 1 < len(sql) and sql[end + 1] == quote:
            i = end + 2
            continue
        return end


class CommandKind(Enum):
    """How the runner treats a statement: sent to the server, or kept on the client."""

    STATEMENT = "statement"
    SET = "set"
    UNSET = "unset"
    DEFINE = "define"
    UNDEFINE = "undefine"


@dataclass(frozen=True, slots=True)
class Command:
    """A classified statement. `name`/`value` are set for SET, UNSET, DEFINE and UNDEFINE."""

    kind: CommandKind
    statement: Statement
    name: str = ""
    value: str = ""


_QUOTED = r"'((?:[^']|'')*)'"
_SET = re.compile(rf"^\s*SET\s+{_QUOTED}\s*=\s*{_QUOTED}\s*;\s*$", re.IGNORECASE | re.DOTALL)
_UNSET = re.compile(rf"^\s*UNSET\s+{_QUOTED}\s*;\s*$", re.IGNORECASE | re.DOTALL)
_DEFINE = re.compile(
    rf"^\s*DEFINE\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*{_QUOTED}\s*;\s*$", re.IGNORECASE | re.DOTALL
)
_UNDEFINE = re.compile(r"^\s*UNDEFINE\s+([A-Za-z_][A-Za-z0-9_]*)\s*;\s*$", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")
_NOT_IN_MIGRATIONS = {"SELECT", "DESCRIBE", "EXPLAIN", "PRINT", "SHOW", "LIST"}


def classify(statement: Statement) -> Command:
    """Classify one statement the way `ksql-migrations` does; queries are refused."""
    text = statement.text
    if match := _SET.match(text):
        return Command(CommandKind.SET, statement, _unquote(match[1]), _unquote(match[2]))
    if match := _UNSET.match(text):
        return Command(CommandKind.UNSET, statement, _unquote(match[1]))
    if match := _DEFINE.match(text):
        return Command(CommandKind.DEFINE, statement, match[1].lower(), _unquote(match[2]))
    if match := _UNDEFINE.match(text):
        return Command(CommandKind.UNDEFINE, statement, match[1].lower())
    first = _FIRST_WORD.match(text)
    word = first[1].upper() if first else ""
    if word in {"SET", "UNSET", "DEFINE", "UNDEFINE"}:
        raise SqlSyntaxError(
            f"malformed {word} statement: {statement.first_line[:80]!r}", statement.line
        )
    if word in _NOT_IN_MIGRATIONS:
        raise SqlSyntaxError(f"{word} statements do not belong in a migration", statement.line)
    return Command(CommandKind.STATEMENT, statement)


def _unquote(text: str) -> str:
    return text.replace("''", "'")


_VARIABLE = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UndefinedVariableError(KeyError):
    """A statement references `${name}` and no value was given for it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"variable ${{{self.name}}} is not defined"


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace `${name}` (names are case-insensitive, as in ksqlDB) with its value.

    `$${name}` is ksqlDB's escape and becomes a literal `${name}`.
    """
    lowered = {key.lower(): value for key, value in variables.items()}

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        try:
            return lowered[name.lower()]
        except KeyError:
            raise UndefinedVariableError(name) from None

    return _VARIABLE.sub(replace, text)


def referenced_variables(text: str) -> set[str]:
    """Lower-cased names of the variables `text` references (escaped ones excluded)."""
    return {m.group(2).lower() for m in _VARIABLE.finditer(text) if not m.group(1)}

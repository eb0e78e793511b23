"""Static checks of ksqldb/: naming, comments, variables, and the event-time format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cryptopipeline.coinbase import parse_time
from cryptopipeline.coinbase._time import to_micros
from cryptopipeline.ksql import MigrationVariables, load_migrations
from cryptopipeline.ksql._prepare import prepare
from cryptopipeline.ksql._split import referenced_variables

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "coinbase"
MIGRATIONS = load_migrations(REPO / "ksqldb")


def test_versions_are_contiguous_and_each_file_says_what_it_creates() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    for migration in MIGRATIONS:
        first = migration.content.decode().splitlines()[0]
        assert first.startswith(f"-- V{migration.version:06d} creates "), migration.filename


def test_every_variable_is_known_and_every_known_variable_is_used() -> None:
    known = set(MigrationVariables().as_map())
    used: set[str] = set()
    for migration in MIGRATIONS:
        for statement in migration.statements():
            used |= referenced_variables(statement.text)
    assert used <= known
    assert known == used


def test_statements_are_idempotent_and_fully_substituted() -> None:
    for migration in MIGRATIONS:
        for _command, text in prepare(migration, MigrationVariables().as_map()):
            if not text:
                continue
            assert "${" not in text
            if text.upper().startswith("CREATE"):
                assert "IF NOT EXISTS" in text.upper(), f"{migration.filename}: {text[:60]}"


def _timestamp_format() -> str:
    content = MIGRATIONS[0].content.decode()
    match = re.search(r"TIMESTAMP_FORMAT\s*=\s*'((?:[^']|'')*)'", content)
    assert match is not None
    return match[1].replace("''", "'")


def _java_parse(pattern: str, text: str) -> int:
    """Epoch ms of `text` under `pattern`, emulating java.time's DateTimeFormatter for the
    subset used here: quoted literals, yyyy MM dd HH mm ss, optional sections `[.S…]` (a
    fixed-width fraction; a section that fails to match is skipped), and X (zone 'Z')."""
    tokens = re.findall(r"'[^']*'|\[[^\]]*\]|yyyy|MM|dd|HH|mm|ss|X|.", pattern)
    pos = 0
    fields: dict[str, int] = {}
    nanos = 0
    for token in tokens:
        if token.startswith("'"):
            literal = token[1:-1]
            assert text.startswith(literal, pos), (token, text)
            pos += len(literal)
        elif token.startswith("["):
            inner = token[1:-1]
            width = inner.count("S")
            assert inner == "." + "S" * width
            digits = text[pos + 1 : pos + 1 + width]
            if text.startswith(".", pos) and len(digits) == width and digits.isdigit():
                nanos = int(digits.ljust(9, "0"))
                pos += 1 + width
        elif token == "X":
            assert text[pos:] == "Z", text
            pos += 1
        elif token in ("yyyy", "MM", "dd", "HH", "mm", "ss"):
            width = len(token)
            fields[token] = int(text[pos : pos + width])
            pos += width
        else:
            assert text[pos] == token, (token, text)
            pos += 1
    assert pos == len(text), f"unparsed rest {text[pos:]!r}"
    iso = "{yyyy:04d}-{MM:02d}-{dd:02d}T{HH:02d}:{mm:02d}:{ss:02d}Z".format(**fields)
    return to_micros(parse_time(iso)) // 1000 + nanos // 1_000_000


def _recorded_times() -> list[str]:
    times = []
    for name in ("COINBASE.ws.28.0.jsonl", "matches-1.jsonl"):
        path = SHARED / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            message = json.loads(line)
            if isinstance(message, dict) and isinstance(message.get("time"), str):
                times.append(message["time"])
    return times


def test_timestamp_format_reads_every_fraction_length_to_the_millisecond() -> None:
    pattern = _timestamp_format()
    for text in [
        "2021-04-17T16:43:37.079420Z",
        "2022-09-12T14:28:52.58496Z",
        "2022-09-12T14:28:52.5849Z",
        "2022-09-12T14:28:52.584Z",
        "2022-09-12T14:28:52.58Z",
        "2022-09-12T14:28:52.5Z",
        "2022-09-12T14:28:52Z",
        "2021-04-17T16:43:59.999999Z",
    ]:
        assert _java_parse(pattern, text) == to_micros(parse_time(text)) // 1000, text


def test_timestamp_format_reads_the_recorded_coinbase_messages() -> None:
    times = _recorded_times()
    if not times:
        pytest.skip("recorded Coinbase data not found beside the project (../shared/data)")
    pattern = _timestamp_format()
    lengths = set()
    for text in times:
        assert _java_parse(pattern, text) == to_micros(parse_time(text)) // 1000, text
        lengths.add(len(text))
    assert len(lengths) > 1  # six-digit and trimmed fractions both occur

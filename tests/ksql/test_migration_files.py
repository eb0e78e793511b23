"""The migrations folder as the runner reads it: what counts as a migration file, and which
folders are refused before anything is sent to a server (issue 17, item 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cryptopipeline.ksql import KsqlSettings, MigrationFileError, apply_migrations, load_migrations
from ksqldb_double import KsqlDouble

ONE = (
    "CREATE STREAM IF NOT EXISTS A (X STRING) "
    "WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON', PARTITIONS=1);\n"
)


def _write(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).write_text(ONE.replace(" A ", f" {name[:7]} "), encoding="utf-8")


def test_a_directory_named_like_a_migration_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, ["V000001__a.sql", "V000003__c.sql"])
    (tmp_path / "V000002__b.sql").mkdir()
    with pytest.raises(MigrationFileError, match=r"V000002__b.sql: not a regular file"):
        load_migrations(tmp_path)


def test_a_fifo_named_like_a_migration_is_refused_without_reading_it(tmp_path: Path) -> None:
    _write(tmp_path, ["V000001__a.sql", "V000003__c.sql"])
    os.mkfifo(tmp_path / "V000002__x.sql")  # reading it would block forever
    with pytest.raises(MigrationFileError, match=r"V000002__x.sql: not a regular file"):
        load_migrations(tmp_path)


def test_a_symlink_to_a_file_is_a_migration(tmp_path: Path) -> None:
    _write(tmp_path, ["V000001__a.sql"])
    (tmp_path / "elsewhere.txt").write_text(ONE, encoding="utf-8")
    (tmp_path / "V000002__b.sql").symlink_to(tmp_path / "elsewhere.txt")
    assert [m.version for m in load_migrations(tmp_path)] == [1, 2]


def test_a_gap_in_the_versions_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, ["V000001__a.sql", "V000003__c.sql"])
    with pytest.raises(MigrationFileError, match=r"version 2 is missing.*V000003__c.sql"):
        load_migrations(tmp_path)


def test_versions_start_at_one(tmp_path: Path) -> None:
    _write(tmp_path, ["V000002__b.sql"])
    with pytest.raises(MigrationFileError, match=r"version 1 is missing"):
        load_migrations(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n", "-- only a comment\n/* and this */\n", " \t\n"])
def test_a_file_without_statements_is_refused(tmp_path: Path, content: str) -> None:
    _write(tmp_path, ["V000001__a.sql"])
    (tmp_path / "V000002__empty.sql").write_text(content, encoding="utf-8")
    with pytest.raises(MigrationFileError, match=r"V000002__empty.sql: no statements"):
        load_migrations(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("V000002__empty.sql", "-- nothing\n", "no statements"),
        ("V000002__bad.sql", "CREATE STREAM X (A STRING) WITH (KAFKA_TOPIC='x", "unterminated"),
        ("V000002__var.sql", "CREATE STREAM ${undefined_here} (A STRING);", "undefined_here"),
    ],
)
async def test_a_bad_file_is_refused_before_anything_is_sent(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    """The runner used to create its metadata stream and table first, then refuse the file."""
    _write(tmp_path, ["V000001__a.sql"])
    (tmp_path / name).write_text(content, encoding="utf-8")
    double = KsqlDouble().start()
    try:
        settings = KsqlSettings(url=double.url, request_timeout_s=5.0)
        with pytest.raises(MigrationFileError, match=problem):
            await apply_migrations(settings, tmp_path)
        assert double.requests == []
        assert double.sources == {}
    finally:
        double.stop()

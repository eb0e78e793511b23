"""Configuration of the runner and the promise that credentials never reach logs or errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cryptopipeline.cli import main
from cryptopipeline.ksql import (
    KsqlServerError,
    KsqlSettings,
    MigrationVariables,
    apply_migrations,
)
from cryptopipeline.ksql._client import KsqlConnectionError
from ksqldb_double import KsqlDouble

SECRET = "pa55-w0rd-never-logged"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPIPELINE_KSQL__URL", "http://ksqldb:8088/")
    monkeypatch.setenv("CRYPTOPIPELINE_KSQL__USERNAME", "svc")
    monkeypatch.setenv("CRYPTOPIPELINE_KSQL__PASSWORD", SECRET)
    monkeypatch.setenv("CRYPTOPIPELINE_KSQL__VARIABLES__RAW_TOPIC", "eth_usd")
    settings = KsqlSettings()
    assert settings.url == "http://ksqldb:8088"
    assert settings.credentials() == ("svc", SECRET)
    assert settings.variables.raw_topic == "eth_usd"
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_a_secret_file_wins_and_url_credentials_are_never_displayed(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    settings = KsqlSettings(url="https://user:inline@ksql.example:8088", password_file=secret_file)
    assert settings.credentials() == ("user", SECRET)
    assert settings.display_url() == "https://ksql.example:8088"
    assert "inline" not in settings.base_url()


def test_bad_variable_values_are_refused() -> None:
    with pytest.raises(ValueError, match="raw_topic"):
        MigrationVariables(raw_topic="bad topic'; DROP")
    with pytest.raises(ValueError, match="raw_stream"):
        MigrationVariables(raw_stream="1-not-an-identifier")


async def test_credentials_are_sent_but_never_logged(
    caplog: pytest.LogCaptureFixture, migrations_dir: Path
) -> None:
    double = KsqlDouble(auth=("svc", SECRET)).start()
    try:
        caplog.set_level(logging.DEBUG)
        good = KsqlSettings(url=double.url, username="svc", password=SECRET)
        report = await apply_migrations(good, migrations_dir)
        assert report.applied == (1, 2, 3, 4)
        assert all(
            r.authorization and r.authorization.startswith("Basic ") for r in double.requests
        )
        bad = KsqlSettings(url=double.url, username="svc", password=SECRET + "x")
        with pytest.raises(KsqlServerError, match="unauthorized") as error:
            await apply_migrations(bad, migrations_dir)
        assert SECRET not in str(error.value)
    finally:
        double.stop()
    unreachable = KsqlSettings(url=f"http://svc:{SECRET}@127.0.0.1:9", request_timeout_s=1)
    with pytest.raises(KsqlConnectionError) as refused:
        await apply_migrations(unreachable, migrations_dir)
    assert SECRET not in str(refused.value)
    assert SECRET not in caplog.text


def test_cli_never_prints_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], migrations_dir: Path
) -> None:
    monkeypatch.setenv("CRYPTOPIPELINE_KSQL__PASSWORD", SECRET)
    code = main(
        [
            "--log-level",
            "DEBUG",
            "ksql",
            "migrate",
            "--url",
            f"http://svc:{SECRET}@127.0.0.1:9",
            "--username",
            "svc",
            "--request-timeout",
            "1",
            "--migrations-dir",
            str(migrations_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "127.0.0.1:9" in err
    assert SECRET not in out + err

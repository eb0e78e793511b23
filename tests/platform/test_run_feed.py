"""`cryptopipeline run --feed`: which feed the local ingestor reads, from coinbase-sim."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptopipeline.ingestor._settings import ADVANCED_WS_URL, IngestorSettings
from cryptopipeline.localrun import LocalRunOptions, plan_programs


@pytest.mark.parametrize(
    ("feed", "url"),
    [
        ("exchange", "ws://127.0.0.1:8765/"),
        ("advanced-trade", "ws://127.0.0.1:8765/advanced-trade"),
    ],
)
def test_the_ingestor_reads_the_chosen_feed_from_the_simulator(
    tmp_path: Path, feed: str, url: str
) -> None:
    programs = {p.name: p for p in plan_programs(LocalRunOptions(home=tmp_path, feed=feed))}
    env = programs["ingestor"].env
    assert env["CRYPTOPIPELINE_EXCHANGE__FEED"] == feed
    assert env["CRYPTOPIPELINE_EXCHANGE__WS_URL"] == url
    assert env["CRYPTOPIPELINE_EXCHANGE__REST_URL"] == "http://127.0.0.1:8765"


def test_live_advanced_trade_uses_coinbase_advanced_trade_urls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = LocalRunOptions(home=tmp_path, exchange="live", feed="advanced-trade")
    env = {p.name: p for p in plan_programs(options)}["ingestor"].env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = IngestorSettings()
    assert settings.exchange.ws_url == ADVANCED_WS_URL
    assert settings.exchange.rest_url == "https://api.coinbase.com"


def test_advanced_trade_has_no_matches() -> None:
    with pytest.raises(ValueError, match="no matches channel"):
        IngestorSettings(exchange={"feed": "advanced-trade", "channels": "matches,heartbeat"})

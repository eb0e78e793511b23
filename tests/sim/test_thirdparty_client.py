"""A third-party Advanced Trade client against the simulator: cryptofeed 2.4.1 (PyPI), its own
`Coinbase` feed class (Advanced Trade since cryptofeed 2.4), in a virtual environment of its
own that tests/thirdparty_clients.py creates and caches under ~/.cache/cryptopipeline
(tests/prepare.py's `cryptofeed` step; the fixture creates it too when missing). It refuses
`ws://` addresses, so it connects to `coinbase-sim --tls`, trusting the simulator's CA
through SSL_CERT_FILE, subscribes, and must parse every trade it gets without a logged
error; its trades are compared with the simulator's ground truth."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sim_helpers import SimFactory

from thirdparty_clients import CRYPTOFEED_VERSION, cryptofeed_python, ensure_cryptofeed
from tooling import prepared, tool_missing

CLIENT = Path(__file__).with_name("cryptofeed_client.py")


@pytest.fixture(scope="session")
def cryptofeed() -> Path:
    python = cryptofeed_python()
    if python is not None:
        return python
    unavailable = prepared().get("unavailable", {})
    if isinstance(unavailable, dict) and "cryptofeed" in unavailable:
        tool_missing("cryptofeed", "no cryptofeed environment")
    try:
        return ensure_cryptofeed()  # ~3 minutes cold: pip builds order_book and cryptofeed
    except subprocess.CalledProcessError as exc:
        tool_missing("cryptofeed", f"installing cryptofeed {CRYPTOFEED_VERSION} failed: {exc}")


@pytest.mark.timeout(600)
async def test_cryptofeed_parses_the_simulators_trades(sim: SimFactory, cryptofeed: Path) -> None:
    wanted = 200
    async with sim(rate=100, speed=1, tls=True, products=("BTC-USD", "ETH-USD")) as server:
        assert server.ca_file is not None
        out = server.ca_file.parent / "cryptofeed.json"
        env = {**os.environ, "SSL_CERT_FILE": str(server.ca_file)}
        process = await asyncio.create_subprocess_exec(
            str(cryptofeed), str(CLIENT), server.advanced_ws_url, "BTC-USD,ETH-USD",
            str(wanted), str(out), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, output.decode()[-3000:]
        result = json.loads(out.read_text())
        truth = {(t.product_id, str(t.trade_id)): t for p in ("BTC-USD", "ETH-USD")
                 for t in server.ledger.trades(p)}  # fmt: skip
    assert result["errors"] == [], result["errors"]
    trades = result["trades"]
    assert len(trades) >= wanted
    assert {t["symbol"] for t in trades} == {"BTC-USD", "ETH-USD"}
    for trade in trades:
        real = truth[(trade["symbol"], trade["id"])]
        assert Decimal(trade["price"]) == real.price and Decimal(trade["amount"]) == real.size
        assert trade["side"] == real.maker_side  # cryptofeed passes the wire's side on


if __name__ == "__main__":  # pragma: no cover - a manual check of the client alone
    sys.exit(pytest.main([__file__, "-q"]))

"""Run cryptofeed's own Coinbase feed (Advanced Trade) against the simulator.

Executed by test_thirdparty_client.py with the interpreter of cryptofeed's own virtual
environment, never imported by the project:

    python cryptofeed_client.py WSS_ADDRESS PRODUCTS COUNT OUT_JSON

The CA is trusted through SSL_CERT_FILE (set by the test): cryptofeed opens the socket with
websockets' default TLS context. Symbols are given to cryptofeed directly, since its symbol
list comes from an authenticated REST call the simulator does not serve. cryptofeed 2.4.1
signs its subscribes the legacy way (api_key, timestamp, signature), so dummy legacy keys
are configured; the simulator treats those fields as no credentials, which public channels
do not need. Writes the trades it parsed and every error cryptofeed logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import ClassVar

from cryptofeed import FeedHandler
from cryptofeed.connection import WebsocketEndpoint
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Coinbase
from cryptofeed.symbols import Symbols


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname}: {record.getMessage()}"[:500])


def main() -> int:
    address, products_text, count_text, out = sys.argv[1:5]
    products = products_text.split(",")
    wanted = int(count_text)
    errors = _Errors()
    logging.getLogger("feedhandler").addHandler(errors)
    logging.getLogger("feedhandler").setLevel(logging.WARNING)

    class SimCoinbase(Coinbase):  # the same feed class, at the simulator's address
        websocket_endpoints: ClassVar[list[WebsocketEndpoint]] = [
            WebsocketEndpoint(address, options={"compression": None})
        ]

    Symbols.set(SimCoinbase.id, {p: p for p in products}, {})
    config = {
        "log": {"filename": "/dev/null", "level": "WARNING"},
        "uvloop": False,
        "coinbase": {"key_id": "legacy", "key_secret": "legacy", "key_passphrase": None,
                     "account_name": None},
    }  # fmt: skip
    trades: list[dict[str, object]] = []
    done = asyncio.Event()

    async def on_trade(trade: object, receipt: float) -> None:
        t = trade  # cryptofeed.types.Trade
        trades.append(
            {
                "symbol": t.symbol,  # type: ignore[attr-defined]
                "id": t.id,  # type: ignore[attr-defined]
                "side": t.side,  # type: ignore[attr-defined]
                "amount": str(t.amount),  # type: ignore[attr-defined]
                "price": str(t.price),  # type: ignore[attr-defined]
                "timestamp": t.timestamp,  # type: ignore[attr-defined]
            }
        )
        if len(trades) >= wanted:
            done.set()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = FeedHandler(config=config)
    handler.add_feed(
        SimCoinbase(
            symbols=products, channels=[TRADES], callbacks={TRADES: on_trade}, config=config
        )
    )
    handler.run(start_loop=False, install_signal_handlers=False)
    try:
        loop.run_until_complete(asyncio.wait_for(done.wait(), 60))
    except TimeoutError:
        errors.records.append(f"timeout: {len(trades)} of {wanted} trades")
    loop.run_until_complete(handler.stop_async(loop))
    with open(out, "w") as handle:
        json.dump({"trades": trades, "errors": errors.records}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

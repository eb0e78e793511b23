"""`coinbase-sim`: run the simulator until SIGINT/SIGTERM.

Every flag falls back to an environment variable `COINBASE_SIM_<FLAG>` (dashes as
underscores), then to the default shown by `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._server import SimServer

log = logging.getLogger("cryptopipeline.sim")

_FAULT_FLAGS = {
    "close_every_messages": (int, "close each connection after N feed messages"),
    "close_every_seconds": (float, "close each connection S seconds after it opened"),
    "stall_seconds": (float, "stop sending (socket stays open) for S seconds ..."),
    "stall_every_seconds": (float, "... every N seconds of the connection's life"),
    "drop_rate": (float, "fraction of feed messages silently dropped (trade-id gaps)"),
    "duplicate_rate": (float, "fraction of feed messages sent twice"),
    "malformed_rate": (float, "fraction of feed messages replaced by a non-JSON frame"),
    "write_delay": (float, "seconds slept before each feed message (a slow link)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coinbase-sim",
        description="A local Coinbase: the Exchange WebSocket feed at ws://HOST:PORT/, the "
        "Advanced Trade market-data feed at ws://HOST:PORT/advanced-trade and REST at "
        "http://HOST:PORT/ (wss:// and https:// with --tls). Flags fall back to "
        "COINBASE_SIM_<FLAG> env vars.",
    )
    add = parser.add_argument
    add("--host", help="listen address (default 127.0.0.1)")
    add("--port", type=int, help="listen port, 0 = any free port (default 8765)")
    add("--products", help="comma-separated product ids (default BTC-USD,ETH-USD)")
    add("--seed", type=int, help="seed of the synthetic market and the fault dice (default 1)")
    add("--rate", type=float, help="synthetic trades per second per product (default 5)")
    add(
        "--rates",
        help="per-product rates overriding --rate, e.g. BTC-USD=80,ETH-USD=40 (default none)",
    )
    add(
        "--speed",
        help="event-time speed-up: 1 = real time, 10 = ten times, "
        "0 or 'max' = as fast as the clients read (default 1)",
    )
    add(
        "--start-time",
        help="RFC 3339 event time of the first moment (default: now; a market faster than "
        "real time starts in the past)",
    )
    add("--max-trades", type=int, help="stop the market after N trades (default: never)")
    add("--replay", type=Path, help="replay this JSON-lines file of recorded feed messages")
    add("--ground-truth", type=Path, help="write every published trade as a JSON line here")
    add(
        "--await-subscribers",
        type=int,
        help="hold the market until N subscribe requests arrived (default 0)",
    )
    add(
        "--max-queue",
        type=int,
        help="paced mode: frames a client may lag before it is cut off (default 100000)",
    )
    add(
        "--high-water",
        type=int,
        help="max-speed mode: frames queued per client before the market waits (default 4096)",
    )
    add(
        "--max-message-size",
        type=int,
        help="largest client frame in bytes; bigger ones close with 1009 (default 65536)",
    )
    faults = parser.add_argument_group("fault injection (per connection, combinable)")
    for name, (kind, text) in _FAULT_FLAGS.items():
        faults.add_argument("--" + name.replace("_", "-"), type=kind, help=text + " (default off)")
    faults.add_argument(
        "--fault-connections",
        help="comma-separated connection indices (0 = first accepted) the "
        "faults apply to (default: all)",
    )
    tls = parser.add_argument_group("TLS (wss:// and https:// on both ports)")
    tls.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve TLS with a certificate made at start (its CA's path is printed)",
    )
    tls.add_argument("--tls-cert", type=Path, help="serve this certificate (PEM) instead")
    tls.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    tls.add_argument("--tls-ca", type=Path, help="the CA to print for clients (default: the cert)")
    tls.add_argument("--tls-dir", type=Path, help="write the generated CA and certificate here")
    add(
        "--advanced-auth",
        choices=["optional", "required"],
        help="Advanced Trade feed: a JWT is needed for private channels only (optional, the "
        "default) or for every subscribe (required); keys come from --trade-keys",
    )
    trade = parser.add_argument_group("Advanced Trade order API (a second port)")
    trade.add_argument("--trade-port", type=int, help="serve the order API here (0 = free)")
    trade.add_argument(
        "--trade-keys", type=Path, help='JSON file {"key name": "EC public key PEM"}'
    )
    trade.add_argument("--trade-cash", help="starting USD balance (default 100000)")
    add("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> tuple[SimConfig, str]:
    """Parse flags into a `SimConfig`; env vars fill what the flags leave out."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in _FAULT_FLAGS and k not in ("fault_connections", "log_level")
    }
    fault_values: dict[str, Any] = {k: getattr(args, k) for k in _FAULT_FLAGS}
    fault_values = {k: v for k, v in fault_values.items() if v is not None}
    if args.fault_connections:
        fault_values["connections"] = tuple(int(v) for v in args.fault_connections.split(","))
    config = SimConfig(**values)
    if fault_values:
        # Fault flags override, one by one, the plan from COINBASE_SIM_FAULTS (JSON).
        merged = {**config.faults.model_dump(), **fault_values}
        config = config.model_copy(update={"faults": FaultPlan(**merged)})
    return config, args.log_level


async def run(config: SimConfig) -> None:
    """Serve until SIGINT or SIGTERM: the one place that handles signals."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimServer(config) as sim:
        source = f"replay {config.replay}" if config.replay else "synthetic"
        log.info(
            f"coinbase-sim serving {source} market: feed {sim.ws_url} rest {sim.http_url} "
            f"advanced-trade {sim.advanced_ws_url}"
            + (f" trade {sim.trade_url}" if sim.trade_url else "")
            + (f" ca {sim.ca_file}" if sim.ca_file else ""),
            extra={
                "ws_url": sim.ws_url,
                "advanced_ws_url": sim.advanced_ws_url,
                "http_url": sim.http_url,
                "ca_file": str(sim.ca_file) if sim.ca_file else None,
                "seed": config.seed,
            },
        )
        if sim.ca_file is not None:
            print(f"coinbase-sim CA: {sim.ca_file}", flush=True)  # for SSL_CERT_FILE & co.
        await sim.serve_until(stop)
    log.info("coinbase-sim stopped", extra={"trades": sim.stats.trades_published})


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, level = config_from_args(argv)
    except (ValidationError, ValueError) as exc:
        print(f"coinbase-sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("websockets.server").setLevel(max(logging.WARNING, logging.root.level))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())

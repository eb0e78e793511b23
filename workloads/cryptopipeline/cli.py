"""`cryptopipeline`: run the local pipeline, manage the local Kafka broker and topics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from cryptopipeline import indicators_cli, watch_cli
from cryptopipeline.backtest import cli as backtest_cli
from cryptopipeline.core import PipelineSettings, configure_logging
from cryptopipeline.core.kafka import ensure_topics
from cryptopipeline.core.settings import OPS_PORTS
from cryptopipeline.ksql import cli as ksql_cli
from cryptopipeline.localkafka import BrokerError, LocalKafka, fetch_kafka
from cryptopipeline.localrun import LocalRunOptions, run_local

DEFAULT_HOME = Path(".work")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cryptopipeline", description=__doc__)
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    parser.add_argument(
        "--log-level",
        help="log level (default: INFO for `run`, WARNING for the commands that print results)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show logs (-vv: client libraries too)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the local pipeline until Ctrl-C")
    run.add_argument("--home", type=Path, default=DEFAULT_HOME, help="working area (git-ignored)")
    run.add_argument("--kafka-port", type=int, default=9092)
    run.add_argument(
        "--bootstrap-servers", help="use this existing Kafka instead of starting one here"
    )
    run.add_argument(
        "--exchange",
        choices=["sim", "live"],
        default="sim",
        help="sim (default) runs coinbase-sim locally; live uses Coinbase's public feed",
    )
    run.add_argument(
        "--feed",
        choices=["exchange", "advanced-trade"],
        default="exchange",
        help="the Coinbase protocol the ingestor reads: exchange (ws-feed, default) or "
        "advanced-trade (market_trades + heartbeats), live or from coinbase-sim",
    )
    run.add_argument("--sim-port", type=int, default=8765)
    run.add_argument(
        "--sim-arg", action="append", default=[], help="extra coinbase-sim flag (repeatable)"
    )
    run.add_argument(
        "--products", default="BTC-USD", help="comma-separated product ids (default BTC-USD)"
    )
    run.add_argument("--ingestor-ops-port", type=int, default=OPS_PORTS["ingestor"])
    run.add_argument("--signaler-ops-port", type=int, default=OPS_PORTS["signaler"])
    run.add_argument("--bot-ops-port", type=int, default=OPS_PORTS["bot"])
    run.add_argument(
        "--candle-seconds", type=int, default=5, help="candle interval of the local signaler"
    )

    kafka = commands.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=["fetch", "up", "down", "status", "wipe"])
    kafka.add_argument("--home", type=Path, default=DEFAULT_HOME / "kafka")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--controller-port", type=int, help="default: --port + 1")
    kafka.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for ready")

    watch_cli.add_parsers(commands)

    topics = commands.add_parser("topics", help="create the pipeline's topics (idempotent)")
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--bootstrap-servers")
    ksql_cli.add_parser(commands)
    indicators_cli.add_parser(commands)
    backtest_cli.add_parser(commands)
    return parser


def _kafka(args: argparse.Namespace) -> int:
    broker = LocalKafka(home=args.home, port=args.port, controller_port=args.controller_port)
    if args.action == "fetch":
        print(fetch_kafka())
    elif args.action == "up":
        broker.start()
        try:
            asyncio.run(broker.wait_ready(args.timeout))
        except BrokerError:
            broker.stop()
            raise
        print(f"Kafka is ready at {broker.bootstrap_servers} (data in {broker.data_dir})")
    elif args.action == "down":
        print(broker.stop().replace("-", " "))
    elif args.action == "status":
        pid = broker.running_pid()
        print(f"running (pid {pid})" if pid else "not running")
        return 0 if pid else 3
    elif args.action == "wipe":
        broker.wipe()
        print(f"removed {args.home}")
    return 0


def _log_level(args: argparse.Namespace) -> str:
    """`run` narrates its progress; the other commands print results and stay quiet."""
    if args.log_level:
        return str(args.log_level)
    return "INFO" if args.command == "run" or args.verbose else "WARNING"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(_log_level(args), json=args.log_format == "json")
    if args.verbose < 2:
        # httpx logs every request at INFO: noise above a command's own output.
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "indicators":
        return indicators_cli.run(args)
    if args.command == "backtest":
        return backtest_cli.run(args)
    try:
        if args.command == "ksql":
            return ksql_cli.run(args)
        settings = PipelineSettings()
        if args.command == "kafka":
            return _kafka(args)
        if args.command in ("status", "tail"):
            return watch_cli.run(args, settings)
        if args.command == "topics":
            if args.bootstrap_servers:
                settings.kafka.bootstrap_servers = args.bootstrap_servers
            created = asyncio.run(ensure_topics(settings.kafka, settings.topic_specs()))
            print("created: " + (", ".join(created) or "nothing (all existed)"))
            return 0
        options = LocalRunOptions(
            home=args.home,
            kafka_port=args.kafka_port,
            bootstrap_servers=args.bootstrap_servers,
            exchange=args.exchange,
            feed=args.feed,
            sim_port=args.sim_port,
            sim_args=args.sim_arg,
            products=[p.strip() for p in args.products.split(",") if p.strip()],
            ingestor_ops_port=args.ingestor_ops_port,
            signaler_ops_port=args.signaler_ops_port,
            bot_ops_port=args.bot_ops_port,
            candle_seconds=args.candle_seconds,
        )
        return asyncio.run(run_local(options, settings))
    except ValidationError as exc:
        print(f"cryptopipeline: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except (BrokerError, RuntimeError) as exc:
        print(f"cryptopipeline: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

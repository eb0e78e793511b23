"""`cryptopipeline status` and `cryptopipeline tail`: what the local (or any) pipeline is
doing right now, read from its probes, metrics and topics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cryptopipeline.core import PipelineSettings
from cryptopipeline.core.kafka import new_consumer
from cryptopipeline.core.settings import OPS_PORTS


@dataclass(frozen=True)
class Part:
    name: str
    url: str
    rate_metrics: tuple[tuple[str, str], ...]  # (label shown, counter sample name)
    gauges: tuple[tuple[str, str], ...] = ()


def _parts(args: argparse.Namespace) -> list[Part]:
    return [
        Part(
            "ingestor", f"http://{args.host}:{args.ingestor_port}",
            (("published/s", "cryptopipeline_ingestor_records_published_total"),
             ("gaps/s", "cryptopipeline_ingestor_gaps_total"),
             ("dead letters/s", "cryptopipeline_ingestor_dead_letters_total")),
            (("buffered", "cryptopipeline_ingestor_buffered_records"),),
        ),
        Part(
            "signaler", f"http://{args.host}:{args.signaler_port}",
            (("records/s", "cryptopipeline_signaler_records_consumed_total"),
             ("candles/s", "cryptopipeline_signaler_candles_closed_total"),
             ("signals/s", "cryptopipeline_signaler_signals_total")),
            (("lag", "cryptopipeline_signaler_consumer_lag_records"),),
        ),
        Part(
            "bot", f"http://{args.host}:{args.bot_port}",
            (("orders/s", "cryptopipeline_bot_order_events_total"),),
            (("equity", "cryptopipeline_bot_equity"),),
        ),
    ]  # fmt: skip


def _totals(text: str) -> dict[str, float]:
    """Every sample name's sum over its labels."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def _sample(client: httpx.AsyncClient, part: Part) -> tuple[str, dict[str, float]]:
    try:
        ready = await client.get(f"{part.url}/readyz")
        metrics = await client.get(f"{part.url}/metrics")
    except httpx.HTTPError as exc:
        return f"down ({type(exc).__name__})", {}
    state = "ready" if ready.status_code == 200 else f"not ready ({ready.status_code})"
    return state, _totals(metrics.text)


async def status(args: argparse.Namespace) -> int:
    """Sample every part twice, `interval` seconds apart, and print health and rates."""
    parts = _parts(args)
    async with httpx.AsyncClient(timeout=3.0) as client:
        first = await asyncio.gather(*(_sample(client, p) for p in parts))
        started = time.monotonic()
        await asyncio.sleep(args.interval)  # rates need two samples, some time apart
        second = await asyncio.gather(*(_sample(client, p) for p in parts))
        elapsed = time.monotonic() - started
    healthy = True
    for part, (_, before), (state, after) in zip(parts, first, second, strict=True):
        healthy &= state == "ready"
        cells = [f"{part.name:<9} {state:<22} {part.url}"]
        if after:
            for label, name in part.rate_metrics:
                rate = (after.get(name, 0.0) - before.get(name, 0.0)) / elapsed
                cells.append(f"{label} {rate:,.1f}")
            for label, name in part.gauges:
                if name in after:
                    cells.append(f"{label} {after[name]:,.2f}")
        print("  ".join(cells))
    return 0 if healthy else 1


async def tail(args: argparse.Namespace, settings: PipelineSettings) -> int:
    """Print records of a topic as they arrive: time, key, headers and the decoded value."""
    kafka = settings.kafka
    if args.bootstrap_servers:  # as given: aiokafka judges it
        kafka = kafka.model_copy(update={"bootstrap_servers": args.bootstrap_servers})
    consumer = new_consumer(
        kafka, "tail", args.topic,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )  # fmt: skip
    await consumer.start()
    printed = 0
    try:
        while args.max is None or printed < args.max:
            batch = await consumer.getmany(timeout_ms=1_000)
            for records in batch.values():
                for record in records:
                    print(_render(record), flush=True)
                    printed += 1
                    if args.max is not None and printed >= args.max:
                        break
    finally:
        await consumer.stop()
    return 0


def _render(record: Any) -> str:
    when = datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(timespec="milliseconds")
    key = record.key.decode("utf-8", "replace") if record.key else "-"
    value: Any = record.value.decode("utf-8", "replace") if record.value else None
    with contextlib.suppress(ValueError, TypeError):
        value = json.loads(value)
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    line = {"time": when, "partition": record.partition, "offset": record.offset, "key": key}
    if headers:
        line["headers"] = headers
    line["value"] = value
    return json.dumps(line, separators=(",", ":"))


def add_parsers(commands: Any) -> None:
    status_parser = commands.add_parser("status", help="health, rates and lag of each part")
    status_parser.add_argument("--host", default="127.0.0.1")
    status_parser.add_argument("--ingestor-port", type=int, default=OPS_PORTS["ingestor"])
    status_parser.add_argument("--signaler-port", type=int, default=OPS_PORTS["signaler"])
    status_parser.add_argument("--bot-port", type=int, default=OPS_PORTS["bot"])
    status_parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between samples"
    )
    tail_parser = commands.add_parser("tail", help="print a topic's records as they arrive")
    tail_parser.add_argument("topic")
    tail_parser.add_argument("--bootstrap-servers")
    tail_parser.add_argument("--from-beginning", action="store_true")
    tail_parser.add_argument("--max", type=int, help="stop after N records")


def run(args: argparse.Namespace, settings: PipelineSettings) -> int:
    try:
        if args.command == "status":
            return asyncio.run(status(args))
        return asyncio.run(tail(args, settings))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 0

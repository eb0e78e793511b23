"""Helpers shared by the ingestor's integration tests (real broker, simulator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

import kafka_support
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._server import SimServer

Records = kafka_support.Records

FEEDS = ("exchange", "advanced-trade")
"""The two Coinbase protocols the ingestor reads; exactly-once tests run for both."""


def feed_url(sim: SimServer, feed: str) -> str:
    """The simulator's WebSocket address of `feed`."""
    return sim.advanced_ws_url if feed == "advanced-trade" else sim.ws_url


def ingestor_settings(
    bootstrap: str, sim: SimServer, raw: str, dlq: str, feed: str = "exchange", **ingest: Any
) -> IngestorSettings:
    return IngestorSettings(
        kafka={"bootstrap_servers": bootstrap, "client_id": "test"},
        topics={"raw": raw, "dead_letter": dlq},
        exchange={
            "feed": feed,
            "ws_url": feed_url(sim, feed),
            "rest_url": sim.http_url,
            "products": list(sim.config.products),
            "connections": 2,
            "ca_file": str(sim.ca_file) if sim.ca_file else None,
        },
        ingest={"heartbeat_timeout_s": 2.0, "gap_grace_s": 0.2, "reconnect_max_s": 1.0, **ingest},
        ops={"host": "127.0.0.1", "port": 0},
    )


@contextlib.asynccontextmanager
async def running(ingestor: Ingestor) -> AsyncIterator[Ingestor]:
    stop = asyncio.Event()
    task = asyncio.create_task(ingestor.run(stop))
    try:
        yield ingestor
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await task


async def collect(
    bootstrap: str, topic: str, until: Callable[[Records], bool], within: float = 120
) -> Records:
    """Read `topic` from the start until `until(records)` holds (fails after `within` s)."""
    return await kafka_support.read_topic(bootstrap, topic, until, within)


def trade_ids_by_product(records: Records, kind: str = "ticker") -> dict[str, list[int]]:
    """Trade ids per product in log order (one product lives in one partition)."""
    by_product: dict[str, list[int]] = {}
    for record in records:
        body = orjson.loads(record.value or b"{}")
        if body.get("type") == kind:
            by_product.setdefault(body["product_id"], []).append(body["trade_id"])
    return by_product


def ground_truth(sim: SimServer) -> dict[str, list[int]]:
    return {p: [t.trade_id for t in sim.ledger.trades(p)] for p in sim.ledger.product_ids}


def checkpoint(sim: SimServer) -> dict[str, int]:
    """Each product's latest ground-truth trade id right now."""
    return {product: ids[-1] for product, ids in ground_truth(sim).items() if ids}


def contains(marks: dict[str, int]) -> Callable[[Records], bool]:
    """True once the records hold every product's trade `marks[product]`."""

    def check(records: Records) -> bool:
        seen = trade_ids_by_product(records)
        return all(mark in seen.get(product, ()) for product, mark in marks.items())

    return check


def assert_exactly_once(records: Records, sim: SimServer, marks: dict[str, int]) -> None:
    """Up to each product's mark, the log holds the ground truth's trade ids exactly, in order."""
    got = trade_ids_by_product(records)
    for product, ids in ground_truth(sim).items():
        expected = ids[: ids.index(marks[product]) + 1]
        published = got[product][: got[product].index(marks[product]) + 1]
        assert published[0] == expected[0], f"{product}: the first trade is missing"
        missing = sorted(set(expected) - set(published))
        doubled = len(published) - len(set(published))
        assert published == expected, (
            f"{product}: {len(missing)} missing (e.g. {missing[:5]}), {doubled} doubled, "
            f"in order: {published == sorted(published)}"
        )


async def wait_for(predicate: Callable[[], bool], within: float = 60) -> None:
    """Poll a condition that has no event of its own (sim counters, ledger sizes)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - counters and ledgers have no event to await
            await asyncio.sleep(0.05)


def metric_total(registry: CollectorRegistry, name: str) -> float:
    """The sum of a counter's samples over all its labels."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == f"{name}_total"
    )

"""On start, learn from the raw topic itself which trade each product published last.

The log is the only truth that survives a crash: whatever was acknowledged (or written
without an acknowledgement reaching us) is in it. Each partition is read backwards in
windows until every product and family has been found, the partition's start is reached,
or the scan limit is hit.
"""

from __future__ import annotations

import logging

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.kafka import new_consumer, partitions_of
from cryptopipeline.ingestor._decode import Family

log = logging.getLogger(__name__)

_WINDOW = 2_000
_FAMILY = {"ticker": Family.TICKER, "match": Family.MATCH, "last_match": Family.MATCH}

LastTrades = dict[tuple[str, Family], int]


async def last_published_trades(
    kafka: KafkaSettings,
    topic: str,
    wanted: set[tuple[str, Family]],
    scan_limit: int = 1_000_000,
) -> LastTrades:
    """The highest trade id in `topic` for each (product, family) in `wanted` that has one."""
    # read_uncommitted: whatever reached the log counts, acknowledged or not
    consumer = new_consumer(kafka, "ingestor-recovery", isolation_level="read_uncommitted")
    await consumer.start()
    found: LastTrades = {}
    try:
        tps = await partitions_of(consumer, topic)
        if not tps:
            return found
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            await _scan_partition(consumer, tp, starts[tp], ends[tp], wanted, found, scan_limit)
    finally:
        await consumer.stop()
    log.info(
        "recovered last published trades",
        extra={"last_trades": {f"{p}/{f}": t for (p, f), t in found.items()}},
    )
    return found


async def _scan_partition(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    start: int,
    end: int,
    wanted: set[tuple[str, Family]],
    found: LastTrades,
    scan_limit: int,
) -> None:
    upper = end
    while upper > start and end - upper < scan_limit and not wanted <= found.keys():
        lower = max(start, upper - _WINDOW)
        consumer.seek(tp, lower)
        offset = lower
        while offset < upper:
            batch = await consumer.getmany(tp, timeout_ms=5_000, max_records=_WINDOW)
            records = batch.get(tp, [])
            if not records:
                break  # compacted or deleted offsets: nothing more below `upper` here
            for record in records:
                if record.offset >= upper:
                    offset = upper
                    break
                offset = record.offset + 1
                _note(record.value, wanted, found)
        upper = lower


def _note(value: bytes | None, wanted: set[tuple[str, Family]], found: LastTrades) -> None:
    if not value:
        return
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        return
    if not isinstance(body, dict):
        return
    family = _FAMILY.get(body.get("type"))  # type: ignore[arg-type]
    product, trade_id = body.get("product_id"), body.get("trade_id")
    if family is None or not isinstance(product, str) or type(trade_id) is not int:
        return
    key = (product, family)
    if key in wanted and trade_id > found.get(key, -1):
        found[key] = trade_id

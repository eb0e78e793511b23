"""Reading a topic back in tests: the one helper the ingestor and end-to-end tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

Records = list[ConsumerRecord[bytes, bytes]]


async def read_topic(
    bootstrap: str, topic: str, until: Callable[[Records], bool], within: float
) -> Records:
    """Read `topic` from the start until `until(records)` holds (fails after `within` s)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: Records = []
    try:
        async with asyncio.timeout(within):
            while not until(records):
                batch = await consumer.getmany(timeout_ms=500)
                for partition in sorted(batch, key=lambda tp: tp.partition):
                    records.extend(batch[partition])
    except TimeoutError:
        raise AssertionError(f"{topic}: condition not met within {within}s") from None
    finally:
        await consumer.stop()
    return records

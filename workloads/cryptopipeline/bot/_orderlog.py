"""`btc_usd_orders` in Kafka: the writer (idempotent, acks=all, key = product_id) and the
reader that replays the whole log at start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cryptopipeline.bot._inputs import BadInput, decode_order_event
from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.kafka import NEW_TOPIC, Record, new_producer, read_to_end
from cryptopipeline.trading import OrderEvent

log = logging.getLogger(__name__)


def now_text() -> str:
    """The wall-clock time of a record the bot writes (RFC 3339, microseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OrderLog:
    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._producer = new_producer(kafka, "bot", linger_ms=0)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def flush(self) -> None:
        """Wait until every event sent so far is acknowledged."""
        await self._producer.flush()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Write one record to another topic (the kill switch) and wait until it is durable."""
        await self._producer.send_and_wait(topic, value, key=key)

    async def write(self, event: OrderEvent, *, durable: bool = True) -> None:
        """Append an event; `durable` waits for the broker's acknowledgement. Events of one
        product share a partition, so a later durable write also covers earlier ones."""
        value = event.model_dump_json().encode()
        key = event.product_id.encode()
        if durable:
            await self._producer.send_and_wait(self.topic, value, key=key)
        else:
            await self._producer.send(self.topic, value, key=key)


async def read_order_log(
    kafka: KafkaSettings,
    topic: str,
    on_bad: Callable[[BadInput, str], None] | None = None,
) -> list[OrderEvent]:
    """Every readable event in the topic, per partition in log order (committed records
    only). An unreadable record is skipped and handed to `on_bad` with its position
    (`topic/partition@offset`); without `on_bad` it is logged."""
    events: list[OrderEvent] = []
    for record in await read_topic(kafka, topic):
        try:
            events.append(decode_order_event(record.value or b""))
        except BadInput as exc:
            where = f"{topic}/{record.partition}@{record.offset}"
            if on_bad is not None:
                on_bad(exc, where)
            else:
                log.error("unreadable order event skipped", extra={
                    "at": where, "reason": exc.reason, "error": exc.detail})  # fmt: skip
    return events


async def read_topic(kafka: KafkaSettings, topic: str) -> list[Record]:
    """Every committed record of a topic, per partition in log order, read to its end (a
    topic created a moment ago gets a few seconds to appear in the metadata)."""
    return await read_to_end(kafka, topic, "bot-recovery", retry=NEW_TOPIC)

"""The ceiling for the ingestor's throughput: aiokafka alone, in its own process, producing
pre-built records (the ingestor's own values, its key and header shapes) to a fresh topic
with the ingestor's producer settings.

Usage: `python ingestor_ceiling.py BOOTSTRAP TOPIC RECORDS_FILE`, where RECORDS_FILE holds
one record value per line (the raw ticker JSON, which has no newline). Prints one JSON line:
records, seconds (first send to last acknowledgement) and records per second.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> dict[str, float]:
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), [TopicSpec(name=topic)])
    producer = AIOKafkaProducer(  # the same settings as cryptopipeline.ingestor._publisher
        bootstrap_servers=bootstrap,
        client_id="bench-ceiling",
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=120_000,
        max_batch_size=256 * 1024,
    )
    key = b"BTC-USD"
    receive_ns = str(time.time_ns()).encode()
    headers = [("receive_time_ns", receive_ns), ("connection_id", b"0"), ("backfill", b"false")]
    timestamp_ms = int(time.time() * 1000)
    await producer.start()
    try:
        await (await producer.send(topic, value=values[0], key=key))  # metadata, connection
        acked = 0

        def on_ack(_: object) -> None:
            nonlocal acked
            acked += 1

        start = time.perf_counter()
        for value in values:
            delivery = await producer.send(
                topic, value=value, key=key, timestamp_ms=timestamp_ms, headers=headers
            )
            delivery.add_done_callback(on_ack)
        await producer.flush()
        seconds = time.perf_counter() - start
    finally:
        await producer.stop()
    assert acked == len(values), f"{acked} of {len(values)} acknowledged"
    return {"records": len(values), "seconds": seconds, "per_second": len(values) / seconds}


def main() -> None:
    bootstrap, topic, path = sys.argv[1:4]
    values = Path(path).read_bytes().splitlines()
    print(json.dumps(asyncio.run(produce(bootstrap, topic, values))), flush=True)


if __name__ == "__main__":
    main()

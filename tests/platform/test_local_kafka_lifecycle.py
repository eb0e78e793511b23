"""LocalKafka's own lifecycle: start, stop cleanly, start again on the same data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.localkafka import BrokerError, LocalKafka
from cryptopipeline.localkafka._broker import free_port

pytestmark = pytest.mark.kafka


async def test_restart_keeps_records_and_stops_cleanly(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    await asyncio.to_thread(broker.start)
    try:
        await broker.wait_ready(within=120)
        pid = broker.running_pid()
        assert pid is not None
        await ensure_topics(settings, [TopicSpec(name="survives", partitions=1)])
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("survives", b"before restart", key=b"BTC-USD")
        finally:
            await producer.stop()

        assert await asyncio.to_thread(broker.stop) == "stopped"  # SIGTERM sufficed
        assert broker.running_pid() is None
        assert not await asyncio.to_thread(Path(f"/proc/{pid}").exists)
        assert broker.stop() == "not-running"

        await asyncio.to_thread(broker.start)  # same home: storage is already formatted
        await broker.wait_ready(within=120)
        consumer = AIOKafkaConsumer(
            "survives", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            async with asyncio.timeout(30):
                record = await consumer.getone()
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"BTC-USD", b"before restart")
    finally:
        await asyncio.to_thread(broker.stop)


def test_port_in_use_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(home=tmp_path, port=port, controller_port=free_port())
        with pytest.raises(BrokerError, match=f"port 127.0.0.1:{port} is in use"):
            broker.start()
    assert broker.running_pid() is None


def test_storage_formats_with_a_cluster_id_that_looks_like_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    # urlsafe base64 of these bytes starts with "-": argparse once took it for a flag
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(bytes=b"\xfb" + b"\x00" * 15))
    broker = LocalKafka(home=tmp_path, port=free_port(), controller_port=free_port())
    from cryptopipeline.localkafka._maven import classpath, fetch_kafka

    broker.format_storage(classpath(fetch_kafka()))
    meta = (broker.data_dir / "meta.properties").read_text()
    assert "cluster.id=-" in meta

"""Signalers that scale out, on real Kafka: replicas added, paused (a zombie), killed and
added again mid-stream commit exactly the signals of one uninterrupted replica, each once.

The fencing itself is shown deterministically too: a partition's new owner fences the old
one, whose next commit fails and loses nothing (the new owner folds the same records).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from signal_support import caught_up, committed_signals, produce, tick_fixture

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.localkafka._broker import free_port
from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.signaler._metrics import SignalerMetrics
from cryptopipeline.signaler._partitions import Partitions
from cryptopipeline.signaler._settings import SignalerSettings

pytestmark = pytest.mark.kafka

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "DOGE-USD", "XRP-USD")
SECONDS = 2 * 3600
PARTITIONS = 6
STRATEGIES = [
    {"name": "sma_crossover", "parameters": {"fast": 5, "slow": 20}},
    {"name": "rsi_threshold", "parameters": {"period": 14, "oversold": 30, "overbought": 70}},
    {"name": "macd_cross", "parameters": {"fast": 12, "slow": 26, "signal": 9}},
]


def _env(kafka: KafkaSettings, raw: str, run: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CRYPTOPIPELINE_TOPICS__RAW": raw,
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": f"signals_{run}",
        "CRYPTOPIPELINE_TOPIC_DEFAULTS__PARTITIONS": str(PARTITIONS),
        "CRYPTOPIPELINE_SIGNALER__STATE_TOPIC": f"state_{run}",
        "CRYPTOPIPELINE_SIGNALER__DEAD_LETTER_TOPIC": f"sdlq_{run}",
        "CRYPTOPIPELINE_SIGNALER__GROUP_ID": f"group_{run}",
        "CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID": f"tx_{run}",
        "CRYPTOPIPELINE_SIGNALER__MAX_BATCH_RECORDS": "100",
        "CRYPTOPIPELINE_STRATEGIES": orjson.dumps(STRATEGIES).decode(),
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": str(port),
    }


class Replica:
    """One signaler process and its readiness endpoint."""

    def __init__(self, kafka: KafkaSettings, raw: str, run: str) -> None:
        self.port = free_port()
        self.env = _env(kafka, raw, run, self.port)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Replica:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cryptopipeline.signaler.cli", env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return self

    async def owned(self) -> list[int] | None:
        """The partitions it reports owning, or None while it is not serving."""
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                body = (await client.get(f"http://127.0.0.1:{self.port}/readyz")).json()
        except (httpx.HTTPError, ValueError):
            return None
        partitions = (body.get("checks") or body).get("partitions")
        return list(partitions) if isinstance(partitions, list) else None

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            assert await self.process.wait() == 0


async def _serving(replica: Replica) -> bool:
    return await replica.owned() is not None


async def _eventually(what: str, check: Any, within: float = 120) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - polled: the replicas expose no event
            await asyncio.sleep(0.3)
    assert await check(), what


async def test_replicas_added_paused_killed_and_added_commit_each_signal_once(
    kafka_settings: KafkaSettings,
) -> None:
    raw = f"ticks_{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka_settings, [TopicSpec(name=raw, partitions=PARTITIONS)])
    values = list(tick_fixture(PRODUCTS, SECONDS))
    quarter = len(values) // 4
    chunks = [iter(values[i * quarter : (i + 1) * quarter if i < 3 else None]) for i in range(4)]
    scaled, reference = f"scale_{uuid.uuid4().hex[:8]}", f"ref_{uuid.uuid4().hex[:8]}"

    await produce(kafka_settings, raw, chunks[0])  # the feed arrives in four parts, live
    a = await Replica(kafka_settings, raw, scaled).start()
    b = Replica(kafka_settings, raw, scaled)
    c = Replica(kafka_settings, raw, scaled)
    try:
        await _eventually(
            "A folded the first part", lambda: caught_up(kafka_settings, f"state_{scaled}", raw)
        )
        await b.start()  # added mid-stream: the group splits the partitions
        await produce(kafka_settings, raw, chunks[1])
        await _eventually("A and B share the partitions", lambda: _shared(a, b))
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # A becomes a zombie holding its partitions
        await produce(kafka_settings, raw, chunks[2])
        await _eventually("B took every partition", lambda: _owns_all(b), 60)
        a.process.send_signal(signal.SIGCONT)  # the zombie wakes; its commits are fenced
        await _eventually("A rejoined", lambda: _shared(a, b), 60)
        assert b.process is not None
        b.process.kill()  # kill -9 mid-stream
        await b.process.wait()
        await produce(kafka_settings, raw, chunks[3])
        await _eventually("A took B's partitions", lambda: _owns_all(a), 60)
        await c.start()  # added again
        # Serving means its SIGTERM handler is in place: stopped before that, a replica that
        # is still importing dies of the signal (exit -15), which A catching up fast allowed.
        await _eventually("C serving", lambda: _serving(c), 60)
        await _eventually(
            "caught up", lambda: caught_up(kafka_settings, f"state_{scaled}", raw), 240
        )
    finally:
        for replica in (a, c):
            if replica.process is not None and replica.process.returncode is None:
                replica.process.send_signal(signal.SIGCONT)
            await replica.stop()
        if b.process is not None and b.process.returncode is None:
            b.process.kill()
    got = await committed_signals(kafka_settings, f"signals_{scaled}")

    alone = await Replica(kafka_settings, raw, reference).start()  # the same feed, uninterrupted
    try:
        await _eventually(
            "reference caught up", lambda: caught_up(kafka_settings, f"state_{reference}", raw), 240
        )
    finally:
        await alone.stop()
    expected = await committed_signals(kafka_settings, f"signals_{reference}")
    assert len(expected) > 20, "the fixture makes signals on every product"
    assert _by_product(got) == _by_product(expected)  # same signals, same order, once each
    assert len({s["signal_id"] for s in got}) == len(got)


async def _shared(*replicas: Replica) -> bool:
    owned = [await r.owned() for r in replicas]
    if any(not o for o in owned):
        return False
    flat = sorted(p for o in owned for p in o or [])
    return flat == list(range(PARTITIONS))


async def _owns_all(replica: Replica) -> bool:
    return await replica.owned() == list(range(PARTITIONS))


def _by_product(signals: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for s in signals:
        grouped.setdefault(s["product_id"], []).append(s)
    return grouped


async def test_a_partitions_new_owner_fences_the_old_one_and_nothing_is_lost(
    kafka_settings: KafkaSettings,
) -> None:
    raw = f"ticks_{uuid.uuid4().hex[:10]}"
    run = uuid.uuid4().hex[:8]
    await ensure_topics(kafka_settings, [TopicSpec(name=raw, partitions=1)])
    await produce(kafka_settings, raw, tick_fixture(("BTC-USD",), 3600))
    settings = SignalerSettings.model_validate({
        "kafka": {"bootstrap_servers": kafka_settings.bootstrap_servers},
        "topics": {"raw": raw, "trade_signals": f"signals_{run}"},
        "strategies": STRATEGIES,
        "signaler": {"state_topic": f"state_{run}", "group_id": f"group_{run}",
                     "transactional_id": f"tx_{run}", "dead_letter_topic": f"sdlq_{run}"},
    })  # fmt: skip
    await ensure_topics(kafka_settings, [TopicSpec(name=f"signals_{run}"),
                                         TopicSpec(name=f"state_{run}", partitions=1)])  # fmt: skip
    tp = TopicPartition(raw, 0)
    old, new = (Partitions(settings, SignalerMetrics(pipeline=f"p{i}")) for i in range(2))
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers,
                                group_id=None, isolation_level="read_committed")  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([tp])
        await old.take(consumer, [tp])
        first = await consumer.getmany(tp, timeout_ms=5000, max_records=2000)
        old.fold(tp, first[tp])
        await old.commit()  # the old owner's first batch lands
        second = await consumer.getmany(tp, timeout_ms=5000, max_records=2000)
        old.fold(tp, second[tp])  # folded, not yet committed ...
        assert old.has_uncommitted()

        await new.take(consumer, [tp])  # ... when the new owner takes the partition
        assert new.owned[0].committed_offset == first[tp][-1].offset + 1
        await old.commit()  # the zombie's commit is fenced: it drops the partition
        assert not old.owned, "the fenced owner gave the partition up"

        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            rest = await consumer.getmany(tp, timeout_ms=5000, max_records=2000)
            new.fold(tp, rest[tp])
        await new.commit()
        records = first[tp] + second[tp]
    finally:
        await consumer.stop()
        await old.close()
        await new.close()
    reference = PartitionEngine(settings.candles.intervals_s, settings.candles.grace_s, STRATEGIES)
    consumer = AIOKafkaConsumer(raw, bootstrap_servers=kafka_settings.bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    expected: list[str] = []
    try:
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=5000)).get(tp, []):
                expected += [s.signal_id for s in reference.on_record(record.value).signals]
    finally:
        await consumer.stop()
    got = [s["signal_id"] for s in await committed_signals(kafka_settings, f"signals_{run}")]
    assert len(records) > 2 and expected, "the fixture makes signals"
    assert got == expected, "each signal once: none lost with the fenced batch, none doubled"

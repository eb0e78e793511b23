"""The durable kill switch: one record per change in a compacted topic next to the order log.

Why its own compacted topic and not the order log: the order log is deleted by time
(`retention.ms`, 7 days by default), so a kill recorded there would be forgotten once it aged
out; compaction keeps the latest record of each key forever, so the state outlives any
retention and a restart reads one small record, not the whole order history. Consumers of
`btc_usd_orders` also never meet a record that is not an order event.

Key `kill_switch`; value `{"schema_version": 1, "killed": bool, "reason": str, "time": str}`
(`cryptopipeline.records.KillSwitchRecord`).
The latest record wins. A record that cannot be read counts as killed (fail safe: a bot never
trades because its off switch was unreadable).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from cryptopipeline.bot._orderlog import read_topic
from cryptopipeline.core import KafkaSettings, TopicSpec
from cryptopipeline.records import KillSwitchRecord

log = logging.getLogger(__name__)

KILL_SWITCH_KEY = b"kill_switch"


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    killed: bool
    reason: str = ""


def kill_switch_topic_spec(
    name: str, *, partitions: int = 1, replication_factor: int = 1
) -> TopicSpec:
    """Compacted and never deleted by time: the latest state stays until it is replaced."""
    return TopicSpec(
        name=name,
        partitions=partitions,
        replication_factor=replication_factor,
        retention_ms=-1,
        extra_config={"cleanup.policy": "compact"},
    )


async def read_kill_switch(kafka: KafkaSettings, topic: str) -> KillSwitchState:
    """The latest recorded state (not killed when nothing was ever recorded)."""
    latest: bytes | None = None
    where = ""
    for record in await read_topic(kafka, topic):
        if record.key == KILL_SWITCH_KEY:
            latest = record.value or b""
            where = f"partition {record.partition} offset {record.offset}"
    if latest is None:
        return KillSwitchState(False)
    try:
        state = KillSwitchRecord.model_validate_json(latest)
    except ValidationError:
        log.error("the kill switch record is unreadable; staying killed (fail safe)",
                  extra={"topic": topic, "at": where})  # fmt: skip
        return KillSwitchState(True, f"unreadable kill switch record at {where}")
    return KillSwitchState(state.killed, state.reason)

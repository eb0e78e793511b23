"""Kafka clients are built, and aiokafka's private parts reached, in `core.kafka` only.

aiokafka has no public way to refresh a consumer's metadata; the toolkit wraps the private
call once (`partitions_of`). Anything else that builds its own client or reaches into one
would bring back the copies this boundary removed.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLKIT = REPO / "workloads" / "cryptopipeline" / "core" / "kafka"
CLIENT_CLASSES = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
PRIVATE_ATTRIBUTES = {"_client", "_coordinator", "_fetcher", "_subscription", "_sender",
                      "_txn_manager", "_message_accumulator"}  # fmt: skip


def _sources() -> list[Path]:
    roots = [REPO / "workloads", REPO / "operator"]
    return sorted(
        path for root in roots for path in root.rglob("*.py") if TOOLKIT not in path.parents
    )


def _offences(text: str, where: str) -> list[str]:
    found = [f"{where}: force_metadata_update" for _ in range(text.count("force_metadata_update"))]
    for node in ast.walk(ast.parse(text, where)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in PRIVATE_ATTRIBUTES
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{where}:{node.lineno}: .{node.attr} of another object")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in CLIENT_CLASSES:
                found.append(f"{where}:{node.lineno}: {name}(...) outside core.kafka")
    return found


def test_the_scan_sees_the_sources() -> None:
    names = {path.name for path in _sources()}
    assert {"service.py", "_orderlog.py", "_manifests.py"} <= names
    assert not any(TOOLKIT in path.parents for path in _sources())


def test_only_the_toolkit_builds_kafka_clients_or_reaches_into_them() -> None:
    offences = [
        offence
        for path in _sources()
        for offence in _offences(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert offences == []


def test_the_check_catches_what_it_is_for() -> None:
    code = (
        "async def f(consumer, settings):\n"
        "    await consumer._client.force_metadata_update()\n"
        "    self._client = AIOKafkaConsumer(bootstrap_servers=settings)\n"
    )
    offences = _offences(code, "sample.py")
    assert len(offences) == 3, offences  # the call by name, the private attribute, the client

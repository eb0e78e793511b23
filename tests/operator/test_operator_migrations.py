"""ksqlDB migrations: the reconciler with a fake runner (real API server), the adapter around
`cryptopipeline.ksql.apply_migrations` against the ksqlDB REST double, and the operator
applying the built-in migrations to a real ksqlDB server and Kafka (direct mode)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from kube_support import Cluster, example
from kubernetes import client

from cryptopipeline.core import TopicSpec
from cryptopipeline_operator import OperatorSettings, Reconciler
from cryptopipeline_operator._ksql import KsqlMigrationRunner, MigrationError, MigrationRequest
from cryptopipeline_operator._kube import Kube
from ksqldb_double import KsqlDouble

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "ksqldb"


class FakeRunner:
    def __init__(self, result: int | None = 4, error: MigrationError | None = None) -> None:
        self.result = result
        self.error = error
        self.requests: list[MigrationRequest] = []

    async def apply(self, request: MigrationRequest) -> int | None:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.result


class NoKafka:
    async def ensure(self, bootstrap: str, topics: Sequence[TopicSpec]) -> list[str]:
        return []

    async def delete(self, bootstrap: str, names: Sequence[str]) -> None:
        return None


def reconciler(cluster: Cluster, runner: FakeRunner, events: list[tuple[str, ...]]) -> Reconciler:
    def emit(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        events.append((type_, reason, message))

    return Reconciler(Kube(cluster.api), NoKafka(), runner, OperatorSettings(), emit=emit)


@pytest.mark.kube
async def test_migrations_applied_version_in_status(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "ksql"},
            "data": {
                "username": base64.b64encode(b"trader").decode(),
                "password": base64.b64encode(b"s3cret").decode(),
            },
        },
    )
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="migrations"),
            data={"V000001__one.sql": "CREATE STREAM x (a INT) WITH (kafka_topic='${raw_topic}');"},
        ),
    )
    body = example()
    body["spec"]["ksqldb"] = {
        "url": "http://ksqldb:8088",
        "credentialsSecret": {"name": "ksql"},
        "migrations": {"configMap": "migrations"},
    }
    made = cluster.create_pipeline(namespace, body)
    runner, events = FakeRunner(result=4), []
    outcome = await reconciler(cluster, runner, events).converge(made, full=True)

    applied = outcome.condition("MigrationsApplied")
    assert (
        applied is not None and applied.ok and applied.message == "ksqlDB migrations at version 4"
    )
    (request,) = runner.requests
    assert (request.url, request.username, request.password) == (
        "http://ksqldb:8088",
        "trader",
        "s3cret",
    )
    assert request.files is not None and list(request.files) == ["V000001__one.sql"]
    assert request.variables == {"raw_topic": "btc_usd"}
    assert "s3cret" not in repr(request)
    assert cluster.pipeline(namespace, "btc")["status"]["migrationVersion"] == 4

    # a failure keeps the last applied version, says why, and asks for a retry
    failing = FakeRunner(error=MigrationError("MigrationFailed", "V000005 line 3: no such stream"))
    outcome = await reconciler(cluster, failing, events).converge(
        cluster.pipeline(namespace, "btc"), full=True
    )
    failed = outcome.condition("MigrationsApplied")
    assert failed is not None and failed.reason == "MigrationFailed"
    assert outcome.retry is not None and "no such stream" in outcome.retry
    status = cluster.pipeline(namespace, "btc")["status"]
    assert status["migrationVersion"] == 4
    assert (
        "Warning",
        "MigrationFailed",
        "MigrationsApplied: V000005 line 3: no such stream",
    ) in events


@pytest.mark.kube
async def test_missing_migrations_config_map_blocks(cluster: Cluster, namespace: str) -> None:
    body = example()
    body["spec"]["ksqldb"] = {"url": "http://ksqldb:8088", "migrations": {"configMap": "nope"}}
    made = cluster.create_pipeline(namespace, body)
    runner, events = FakeRunner(), []
    outcome = await reconciler(cluster, runner, events).converge(made, full=True)
    ready = outcome.condition("Ready")
    assert ready is not None and ready.reason == "ConfigMapNotFound"
    assert runner.requests == []
    assert [e[1] for e in events] == ["ConfigMapNotFound"]


def _stream(name: str) -> str:
    return (
        f"CREATE STREAM {name} (product_id VARCHAR KEY) "
        "WITH (kafka_topic='${raw_topic}', value_format='JSON');"
    )


async def test_adapter_calls_the_runner_library() -> None:
    """The ConfigMap's files, the credentials and the `${...}` values reach ksqlDB through
    the runner, and the version it reached comes back (the REST double checks the password;
    the test ksqlDB server runs without authentication)."""
    pytest.importorskip("cryptopipeline.ksql")
    runner = KsqlMigrationRunner(builtin_dir=REPO_MIGRATIONS)
    double = KsqlDouble(topics={"t"}, auth=("u", "p")).start()
    try:
        request = MigrationRequest(
            url=double.url,
            username="u",
            password="p",
            files={"V000001__a.sql": _stream("a_ticks"), "V000002__b.sql": _stream("b_ticks")},
            variables={"raw_topic": "t"},
        )
        assert await runner.apply(request) == 2
        assert double.sources["A_TICKS"].topic == double.sources["B_TICKS"].topic == "t"
        basic = "Basic " + base64.b64encode(b"u:p").decode()
        assert {r.authorization for r in double.requests} == {basic}
        assert await runner.apply(request) == 2  # again: nothing new, the same version
    finally:
        double.stop()

    builtin = KsqlDouble().start()  # no files in the request: the built-in ksqldb/
    try:
        request = MigrationRequest(builtin.url, None, None, None, {})
        assert await runner.apply(request) == len(list(REPO_MIGRATIONS.glob("V*.sql")))
        assert {r.authorization for r in builtin.requests} == {None}
    finally:
        builtin.stop()


async def test_adapter_reports_runner_errors() -> None:
    pytest.importorskip("cryptopipeline.ksql")
    runner = KsqlMigrationRunner(builtin_dir=REPO_MIGRATIONS)
    gone = KsqlDouble().start()
    gone.stop()  # nothing listens at its address any more
    with pytest.raises(MigrationError) as caught:
        await runner.apply(MigrationRequest(gone.url, "u", "pw", None, {}))
    assert caught.value.reason == "MigrationFailed"
    assert "KsqlConnectionError: " in str(caught.value)
    assert "pw" not in str(caught.value)

    double = KsqlDouble(topics={"t"}).start()
    double.fail_on("b_ticks", "line 1:8: no viable alternative")
    try:
        files = {"V000001__a.sql": _stream("a_ticks"), "V000002__b.sql": _stream("b_ticks")}
        request = MigrationRequest(double.url, None, None, files, {"raw_topic": "t"})
        with pytest.raises(MigrationError) as failed:
            await runner.apply(request)
    finally:
        double.stop()
    assert failed.value.reason == "MigrationFailed"
    assert "V000002__b.sql:1" in str(failed.value) and "no viable alternative" in str(failed.value)


@pytest.mark.kube
@pytest.mark.kafka
@pytest.mark.ksqldb
async def test_the_operator_applies_the_migrations_to_a_real_ksqldb(
    cluster: Cluster,
    namespace: str,
    kafka_bootstrap: str,
    ksqldb_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Direct mode: the operator creates the topics in the real Kafka, then applies the
    built-in ksqldb/ to the real ksqlDB server and reports the version in status."""
    from cryptopipeline.ksql import KsqlClient, KsqlSettings
    from cryptopipeline.ksql._verify import verify_variables
    from cryptopipeline_operator._kafka import KafkaTopicAdmin

    run = uuid.uuid4().hex[:8]
    variables = verify_variables(run)  # fresh object names on the shared server
    for name, value in variables.as_map().items():
        monkeypatch.setenv(f"CRYPTOPIPELINE_KSQL__VARIABLES__{name.upper()}", value)
    metadata = {"STREAM": f"OP{run.upper()}_EVENTS", "TABLE": f"OP{run.upper()}_VERSIONS"}
    for kind, name in metadata.items():
        monkeypatch.setenv(f"CRYPTOPIPELINE_KSQL__MIGRATIONS_{kind}", name)
    body = example()
    raw = f"op_{run}_raw"
    body["spec"]["kafka"] = {
        "bootstrapServers": kafka_bootstrap,
        "topics": {
            "partitions": 3,
            "names": {
                "raw": raw,
                "deadLetter": f"op_{run}_dlq",
                "tradeSignals": f"op_{run}_signals",
                "orders": f"op_{run}_orders",
            },
        },
    }
    body["spec"]["ksqldb"] = {"url": ksqldb_url}
    made = cluster.create_pipeline(namespace, body)
    events: list[tuple[str, ...]] = []

    def emit(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        events.append((type_, reason, message))

    runner = KsqlMigrationRunner(builtin_dir=REPO_MIGRATIONS)
    operator = Reconciler(
        Kube(cluster.api), KafkaTopicAdmin(), runner, OperatorSettings(), emit=emit
    )
    outcome = await operator.converge(made, full=True)

    topics = outcome.condition("TopicsReady")
    assert topics is not None and topics.ok, topics
    applied = outcome.condition("MigrationsApplied")
    assert applied is not None and applied.ok, applied
    assert applied.message == "ksqlDB migrations at version 4"
    assert cluster.pipeline(namespace, "btc")["status"]["migrationVersion"] == 4
    settings = KsqlSettings(url=ksqldb_url)
    async with KsqlClient(settings) as client:
        names = await client.source_names()
        current = await client.pull(
            f"SELECT * FROM {metadata['TABLE']} WHERE VERSION_KEY = 'CURRENT';"
        )
    assert {variables.raw_stream, variables.signals_table, variables.unified_stream} <= names
    assert current[0]["VERSION"] == "4" and current[0]["STATE"] == "MIGRATED"
    stream = await _describe_topic(settings, variables.raw_stream)
    assert stream == raw  # read from the topic the operator made, not the default name

    # again: nothing to apply, the same version reported
    outcome = await operator.converge(cluster.pipeline(namespace, "btc"), full=True)
    again = outcome.condition("MigrationsApplied")
    assert again is not None and again.ok and again.message == applied.message
    async with KsqlClient(settings) as client:
        assert (
            await client.pull(f"SELECT * FROM {metadata['TABLE']} WHERE VERSION_KEY = 'CURRENT';")
            == current
        )


async def _describe_topic(settings: Any, source: str) -> str:
    from cryptopipeline.ksql import KsqlClient

    async with KsqlClient(settings) as client:
        (entity,) = await client.execute(f"DESCRIBE {source};")
    return str(entity["sourceDescription"]["topic"])

"""Converging the cluster to one CryptoPipeline: the operator's only business logic with I/O.

`Reconciler.converge` checks what only the cluster can tell (Secrets, ConfigMaps, known
strategies), applies the owned objects the builders return, makes the topics exist,
applies ksqlDB migrations, reads back what it owns and writes status conditions, with an
Event for each condition that changes. Every step is idempotent: running it again with
nothing changed writes nothing. Kafka, the API server and the migration runner are
injected, so tests can drive it with fakes or with the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import kopf
from pydantic import ValidationError

import cryptopipeline_operator._conditions as cond
from cryptopipeline.core import TopicSpec
from cryptopipeline.strategies import STRATEGIES
from cryptopipeline_operator._checks import spec_problem
from cryptopipeline_operator._conditions import Condition
from cryptopipeline_operator._kafka import TopicAdmin, TopicError
from cryptopipeline_operator._ksql import MigrationError, MigrationRunner, migration_request
from cryptopipeline_operator._kube import Kube, KubeError
from cryptopipeline_operator._manifests import (
    SERVICE_MONITOR_API,
    STRIMZI_API,
    WORKLOADS,
    Manifest,
    Pipeline,
    workload_manifests,
    workload_name,
)
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import API_VERSION, GROUP, KIND, PipelineSpec
from cryptopipeline_operator._status import EmitFn, kopf_event, write_status
from cryptopipeline_operator._teardown import tear_down
from cryptopipeline_operator._topics import topic_manifests, topic_names, topic_resource_name

#: Strategy names the signaler knows (the strategies package's registry).
KNOWN_STRATEGIES: Final = frozenset(STRATEGIES)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one convergence saw; `retry` says why it should run again soon (None: done)."""

    conditions: tuple[Condition, ...]
    retry: str | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class Reconciler:
    """Converges CryptoPipelines; one instance per operator (built at startup)."""

    def __init__(
        self,
        kube: Kube,
        topics: TopicAdmin,
        migrations: MigrationRunner,
        settings: OperatorSettings,
        *,
        emit: EmitFn = kopf_event,
        known_strategies: frozenset[str] = KNOWN_STRATEGIES,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.kube = kube
        self.topics = topics
        self.migrations = migrations
        self.settings = settings
        self.emit = emit
        self.known_strategies = known_strategies
        self.clock = clock

    # --- the whole loop ----------------------------------------------------------------

    async def converge(self, body: Mapping[str, Any], *, full: bool) -> Outcome:
        """Make the cluster match `body`. `full`: also topics in Kafka and migrations
        (the change handlers); otherwise only owned objects and status (drift checks)."""
        meta = body["metadata"]
        # Status as stored now, not as the (possibly older) event showed it: the change
        # handlers and the drift daemon take turns and must build on each other's writes.
        # The daemon also takes the current spec; a change handler keeps the one it handles.
        current = await self.kube.get(API_VERSION, KIND, meta["namespace"], meta["name"])
        if current is None:
            return Outcome(())
        if not full:
            body = current
        status = dict(current.get("status") or {})
        previous = status.get("conditions") or []
        body = {**body, "status": status}
        try:
            spec = PipelineSpec.from_body(body.get("spec"))
        except ValidationError as exc:
            invalid = cond.false(cond.READY, "InvalidSpec", str(exc).splitlines()[0])
            return await self._blocked(body, previous, invalid, full=full)
        pipeline = Pipeline(name=meta["name"], namespace=meta["namespace"], spec=spec)

        problem = await self.check(pipeline)
        if problem is not None:
            return await self._blocked(body, previous, problem, full=full)

        retry: list[str] = []
        strimzi_missing = await self._apply_children(body, pipeline, retry)
        topics = strimzi_missing or await self._topics(pipeline, previous, full=full, retry=retry)
        migrations, version = await self._migrations(
            pipeline, previous, status.get("migrationVersion"), full=full, retry=retry
        )
        deployments: dict[str, dict[str, Any] | None] = {
            w: await self.kube.get(
                "apps/v1", "Deployment", pipeline.namespace, workload_name(pipeline, w)
            )
            for w in WORKLOADS
        }
        workloads = cond.workloads_available(deployments)
        if retry and workloads.ok:
            workloads = cond.false(cond.WORKLOADS_AVAILABLE, "ApplyFailed", "; ".join(retry))
        parts = (topics, migrations, workloads)
        conditions = (*parts, cond.ready(parts))
        new_status: dict[str, Any] = {
            "topicManagement": spec.kafka.management,
            "topics": topic_names(pipeline),
            "migrationVersion": version,
            "workloads": {w: cond.workload_state(d) for w, d in deployments.items()},
        }
        await self._write_status(body, previous, conditions, new_status, full=full)
        return Outcome(conditions, "; ".join(retry) if retry else None)

    # --- checks only the operator can make ---------------------------------------------

    async def check(self, pipeline: Pipeline) -> Condition | None:
        """A Ready=False condition for the first problem the schema cannot see, or None."""
        return await spec_problem(self.kube, pipeline, self.known_strategies)

    async def _blocked(
        self,
        body: Mapping[str, Any],
        previous: Sequence[Mapping[str, Any]],
        problem: Condition,
        *,
        full: bool,
    ) -> Outcome:
        """Nothing is applied while the spec has a problem; status and an Event say why."""
        parts = tuple(
            cond.find(previous, t) or cond.unknown(t, "Blocked", problem.message)
            for t in cond.PARTS
        )
        conditions = (*parts, problem)
        await self._write_status(body, previous, conditions, {}, full=full)
        return Outcome(conditions, problem.message)

    # --- owned objects -----------------------------------------------------------------

    async def _apply_children(
        self, body: Mapping[str, Any], pipeline: Pipeline, retry: list[str]
    ) -> Condition | None:
        """Apply every owned object; return a TopicsReady condition if Strimzi is missing."""
        monitors = await self.kube.serves(SERVICE_MONITOR_API, "ServiceMonitor")
        manifests: list[Manifest] = workload_manifests(pipeline, service_monitors=monitors)
        topics_problem = None
        if pipeline.spec.kafka.management == "strimzi":
            if await self.kube.serves(STRIMZI_API, "KafkaTopic"):
                manifests += topic_manifests(pipeline)
            else:
                topics_problem = cond.false(
                    cond.TOPICS_READY,
                    "StrimziNotInstalled",
                    "the KafkaTopic CRD (kafka.strimzi.io/v1beta2) is not installed: install "
                    "Strimzi or set kafka.topicManagement: direct",
                )
        kopf.adopt(manifests, owner=body)  # type: ignore[arg-type]
        for manifest in manifests:
            try:
                await self.kube.apply(manifest)
            except KubeError as exc:
                retry.append(f"{manifest['kind']} {manifest['metadata']['name']}: {exc}")
        return topics_problem

    # --- topics and migrations ---------------------------------------------------------

    async def _topics(
        self,
        pipeline: Pipeline,
        previous: Sequence[Mapping[str, Any]],
        *,
        full: bool,
        retry: list[str],
    ) -> Condition:
        spec = pipeline.spec
        names = topic_names(pipeline)
        if spec.kafka.management == "strimzi":
            topics = {
                name: await self.kube.get(
                    STRIMZI_API,
                    "KafkaTopic",
                    pipeline.namespace,
                    topic_resource_name(pipeline, name),
                )
                for name in names
            }
            return cond.strimzi_topics_ready(topics)
        if not full:
            return cond.find(previous, cond.TOPICS_READY) or cond.unknown(
                cond.TOPICS_READY, "Pending", "topics not checked yet"
            )
        settings = spec.kafka.topics
        specs = [
            TopicSpec(
                name=name,
                partitions=settings.partitions,
                replication_factor=settings.replicas,
                retention_ms=settings.retention_ms,
            )
            for name in names
        ]
        bootstrap = spec.kafka.bootstrap
        try:
            await self.topics.ensure(bootstrap, specs)
        except TopicError as exc:
            retry.append(str(exc))
            return cond.false(cond.TOPICS_READY, exc.reason, str(exc))
        return cond.true(
            cond.TOPICS_READY, "TopicsCreated", f"{len(names)} topics exist in Kafka at {bootstrap}"
        )

    async def _migrations(
        self,
        pipeline: Pipeline,
        previous: Sequence[Mapping[str, Any]],
        version: Any,
        *,
        full: bool,
        retry: list[str],
    ) -> tuple[Condition, int | None]:
        old_version = version if isinstance(version, int) else None
        ksql = pipeline.spec.ksqldb
        if ksql is None:
            return (
                cond.true(
                    cond.MIGRATIONS_APPLIED, "NotConfigured", "no ksqldb in spec: nothing to apply"
                ),
                old_version,
            )
        if not full:
            previous_cond = cond.find(previous, cond.MIGRATIONS_APPLIED)
            return previous_cond or cond.unknown(
                cond.MIGRATIONS_APPLIED, "Pending", "migrations not applied yet"
            ), old_version
        try:
            request = await migration_request(self.kube, pipeline)
            applied = await self.migrations.apply(request)
        except MigrationError as exc:
            retry.append(str(exc))
            return cond.false(cond.MIGRATIONS_APPLIED, exc.reason, str(exc)), old_version
        except KubeError as exc:
            retry.append(str(exc))
            return cond.false(cond.MIGRATIONS_APPLIED, "ApiError", str(exc)), old_version
        shown = "none yet" if applied is None else f"version {applied}"
        return cond.true(
            cond.MIGRATIONS_APPLIED, "Applied", f"ksqlDB migrations at {shown}"
        ), applied

    # --- status and events -------------------------------------------------------------

    async def _write_status(
        self,
        body: Mapping[str, Any],
        previous: Sequence[Mapping[str, Any]],
        conditions: Sequence[Condition],
        fields: Mapping[str, Any],
        *,
        full: bool,
    ) -> None:
        await write_status(
            self.kube, body, previous, conditions, fields, full=full, now=self.clock(),
            emit=self.emit,
        )  # fmt: skip

    # --- deletion ----------------------------------------------------------------------

    async def tear_down(self, body: Mapping[str, Any]) -> None:
        """Delete what the resource owns; topics only when deletionPolicy is Delete."""
        await tear_down(self.kube, self.topics, self.settings, body)


def owner_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the CryptoPipeline owning `obj`, if one does."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(GROUP + "/"):
            return str(ref.get("uid"))
    return None

"""Converging the cluster to one CryptoPipeline: the operator's only business logic with I/O.

`Reconciler.converge` checks what only the cluster can tell (Secrets, ConfigMaps, known
strategies), applies the owned objects the builders return, makes the topics exist,
applies ksqlDB migrations, reads back what it owns and writes status conditions, with an
Event for each condition that changes. Every step is idempotent: running it again with
nothing changed writes nothing. Kafka, the API server and the migration runner are
injected, so tests can drive it with fakes or with the real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import kopf
from pydantic import ValidationError

from cryptopipeline.core import TopicSpec
from cryptopipeline.strategies import STRATEGIES, resolve_parameters
from cryptopipeline_operator import _conditions as cond
from cryptopipeline_operator._conditions import Condition
from cryptopipeline_operator._kafka import TopicAdmin, TopicError
from cryptopipeline_operator._ksql import MigrationError, MigrationRequest, MigrationRunner
from cryptopipeline_operator._kube import Kube, KubeError
from cryptopipeline_operator._manifests import (
    MANAGED_BY,
    SERVICE_MONITOR_API,
    STRIMZI_API,
    WORKLOADS,
    Manifest,
    Pipeline,
    topic_manifests,
    topic_names,
    topic_resource_name,
    workload_manifests,
    workload_name,
)
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import GROUP, KIND, VERSION, PipelineSpec

log = logging.getLogger(__name__)

#: Strategy names the signaler knows (the strategies package's registry).
KNOWN_STRATEGIES: Final = frozenset(STRATEGIES)
#: Condition reasons that mean "not there yet", not "wrong": Normal events, not Warnings.
_PROGRESS_REASONS: Final = frozenset({"Progressing", "WaitingForTopicOperator", "Pending"})
API_VERSION: Final = f"{GROUP}/{VERSION}"

EmitFn = Callable[[Mapping[str, Any], str, str, str], None]


def kopf_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about the resource (kopf queues and sends it)."""
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]


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
        spec = pipeline.spec
        unknown = [s.name for s in spec.strategies or [] if s.name not in self.known_strategies]
        if unknown:
            known = ", ".join(sorted(self.known_strategies))
            return cond.false(
                cond.READY,
                "UnknownStrategy",
                f"unknown strategy {', '.join(repr(n) for n in unknown)}; known: {known}",
            )
        for strategy in spec.strategies or []:
            try:  # the signaler's own check: parameter names, types and ranges
                resolve_parameters(strategy.name, strategy.parameters)
            except ValueError as exc:
                return cond.false(cond.READY, "InvalidStrategy", f"strategies: {exc}")
        needed: list[tuple[str, str, Sequence[str]]] = []
        if spec.bot.coinbase_key_secret is not None:
            ref = spec.bot.coinbase_key_secret
            needed.append(("bot.coinbaseKeySecret", ref.name, ref.keys()))
        if spec.bot.kill_token_secret is not None:
            token = spec.bot.kill_token_secret
            needed.append(("bot.killTokenSecret", token.name, [token.key]))
        if spec.ksqldb is not None and spec.ksqldb.credentials_secret is not None:
            ref2 = spec.ksqldb.credentials_secret
            needed.append(
                ("ksqldb.credentialsSecret", ref2.name, [ref2.username_key, ref2.password_key])
            )
        for field, name, keys in needed:
            found = await self.kube.secret_keys(pipeline.namespace, name)
            if found is None:
                return cond.false(
                    cond.READY, "SecretNotFound", f"{field}: Secret {name!r} does not exist"
                )
            missing = [k for k in keys if k not in found]
            if missing:
                return cond.false(
                    cond.READY,
                    "SecretKeyMissing",
                    f"{field}: Secret {name!r} has no key {', '.join(repr(k) for k in missing)}",
                )
        if spec.ksqldb is not None and spec.ksqldb.migrations.config_map:
            name = spec.ksqldb.migrations.config_map
            if await self.kube.get("v1", "ConfigMap", pipeline.namespace, name) is None:
                return cond.false(
                    cond.READY,
                    "ConfigMapNotFound",
                    f"ksqldb.migrations.configMap: ConfigMap {name!r} does not exist",
                )
        return None

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
            request = await self._migration_request(pipeline)
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

    async def _migration_request(self, pipeline: Pipeline) -> MigrationRequest:
        ksql = pipeline.spec.ksqldb
        assert ksql is not None
        username = password = None
        if ksql.credentials_secret is not None:
            ref = ksql.credentials_secret
            username = await self.kube.secret_value(pipeline.namespace, ref.name, ref.username_key)
            password = await self.kube.secret_value(pipeline.namespace, ref.name, ref.password_key)
        files = None
        if ksql.migrations.config_map:
            found = await self.kube.get(
                "v1", "ConfigMap", pipeline.namespace, ksql.migrations.config_map
            )
            files = dict((found or {}).get("data") or {})
        names = pipeline.spec.kafka.topics.names
        return MigrationRequest(
            url=ksql.url,
            username=username,
            password=password,
            files=files,
            variables={"raw_topic": names.raw},
        )

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
        meta = body["metadata"]
        old = dict(body.get("status") or {})
        generation = int(meta.get("generation", 0))
        if not full:  # drift checks do not claim to have handled a newer spec
            generation = int(old.get("observedGeneration", generation) or 0)
        new = {
            **fields,
            "observedGeneration": generation,
            "conditions": cond.merge(previous, conditions, generation=generation, now=self.clock()),
        }
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        if changed:
            try:
                await self.kube.merge_patch(
                    API_VERSION,
                    KIND,
                    meta["namespace"],
                    meta["name"],
                    {"status": changed},
                    subresource="status",
                )
            except KubeError as exc:
                if exc.status != 404:  # gone meanwhile: nothing to report on
                    raise
        for transition in cond.transitions(previous, conditions):
            if transition.type != cond.READY and transition.status != "False":
                continue  # one Normal event for Ready; none for parts not checked yet
            type_ = (
                "Normal" if transition.ok or transition.reason in _PROGRESS_REASONS else "Warning"
            )
            self.emit(body, type_, transition.reason, f"{transition.type}: {transition.message}")

    # --- deletion ----------------------------------------------------------------------

    async def tear_down(self, body: Mapping[str, Any]) -> None:
        """Delete what the resource owns; topics only when deletionPolicy is Delete.

        Owned objects are deleted explicitly (not left to the garbage collector) so
        deletion is complete even where no controller-manager runs. KafkaTopics kept by
        Retain lose their owner reference first, so the collector cannot take them.
        """
        meta = body["metadata"]
        spec = PipelineSpec.from_body(body.get("spec"))
        pipeline = Pipeline(name=meta["name"], namespace=meta["namespace"], spec=spec)
        selector = {
            "app.kubernetes.io/instance": pipeline.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        keep_topics = spec.kafka.topics.deletion_policy == "Retain"
        if spec.kafka.management == "strimzi" and await self.kube.serves(STRIMZI_API, "KafkaTopic"):
            for topic in await self.kube.list(
                STRIMZI_API, "KafkaTopic", pipeline.namespace, selector
            ):
                name = topic["metadata"]["name"]
                if keep_topics:
                    await self.kube.merge_patch(
                        STRIMZI_API,
                        "KafkaTopic",
                        pipeline.namespace,
                        name,
                        {"metadata": {"ownerReferences": None}},
                    )
                else:
                    await self.kube.delete(STRIMZI_API, "KafkaTopic", pipeline.namespace, name)
        elif not keep_topics:
            try:
                await self.topics.delete(spec.kafka.bootstrap, topic_names(pipeline))
            except TopicError as exc:
                raise kopf.TemporaryError(
                    f"deleting topics: {exc}", delay=self.settings.retry_initial_s
                ) from None
        kinds = [("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")]
        if await self.kube.serves(SERVICE_MONITOR_API, "ServiceMonitor"):
            kinds.append((SERVICE_MONITOR_API, "ServiceMonitor"))
        for api_version, kind in kinds:
            for obj in await self.kube.list(api_version, kind, pipeline.namespace, selector):
                if _owned_by(obj, meta.get("uid")):
                    await self.kube.delete(
                        api_version, kind, pipeline.namespace, obj["metadata"]["name"]
                    )


def _owned_by(obj: Mapping[str, Any], uid: Any) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def owner_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the CryptoPipeline owning `obj`, if one does."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(GROUP + "/"):
            return str(ref.get("uid"))
    return None

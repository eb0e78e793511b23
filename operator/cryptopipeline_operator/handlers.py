"""The kopf handlers: small functions that hand each event to the `Reconciler`.

- startup: settings and the reconciler, built once (`CRYPTOPIPELINE_OPERATOR__*`);
- create / update / resume: a full convergence; a failure is retried with backoff
  (`kopf.TemporaryError`), never crashes the operator;
- a daemon per resource: corrects drift every `drift_interval_s`, and at once when an
  owned object changes or disappears (the child watchers wake it);
- delete (kopf's finalizer): topics by the deletion policy, then the owned objects.

Run with `cryptopipeline-operator` (see `cli.py`) or `kopf run -m cryptopipeline_operator.handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from cryptopipeline_operator import _metrics
from cryptopipeline_operator._kafka import KafkaTopicAdmin
from cryptopipeline_operator._ksql import KsqlMigrationRunner
from cryptopipeline_operator._kube import Kube, load_config
from cryptopipeline_operator._manifests import MANAGED_BY
from cryptopipeline_operator._reconcile import Reconciler, owner_uid
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import GROUP, PLURAL, VERSION

CHILD_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Read the configuration once and build the reconciler every handler uses."""
    config = OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="cryptopipeline.io"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="cryptopipeline.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what matters
    settings.persistence.finalizer = "cryptopipeline.io/finalizer"
    kube = Kube(load_config())
    memo.config = config
    memo.reconciler = Reconciler(
        kube,
        KafkaTopicAdmin(timeout_s=config.kafka_timeout_s),
        KsqlMigrationRunner(builtin_dir=config.migrations_dir),
        config,
    )
    memo.wakeups = {}  # CryptoPipeline uid -> asyncio.Event, shared by all handlers
    if config.metrics_port:
        _metrics.serve(config.metrics_port)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount, else $KUBECONFIG (read now, not at import)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        reconciler.kube.close()


def _lock(memo: kopf.Memo) -> asyncio.Lock:
    """One convergence at a time per resource (handlers and its daemon share its memo)."""
    lock: asyncio.Lock | None = memo.get("lock")
    if lock is None:
        lock = memo["lock"] = asyncio.Lock()
    return lock


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def converge(
    body: kopf.Body, memo: kopf.Memo, retry: int, logger: kopf.Logger, **_: Any
) -> None:
    """Converge everything (objects, topics, migrations, status); retry failures."""
    reconciler: Reconciler = memo.reconciler
    async with _lock(memo):
        outcome = await reconciler.converge(body, full=True)
    _metrics.reconciled(body.metadata.name or "", outcome)
    if outcome.retry is not None:
        delay = reconciler.settings.backoff(retry)
        logger.warning("not converged, retrying in %.0fs: %s", delay, outcome.retry)
        raise kopf.TemporaryError(outcome.retry, delay=delay)
    logger.info("converged")


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=2.0)
async def correct_drift(
    body: kopf.Body,
    memo: kopf.Memo,
    uid: str,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Re-apply owned objects and refresh status: periodically and when a child changes."""
    reconciler: Reconciler = memo.reconciler
    wakeups: dict[str, asyncio.Event] = memo.wakeups
    wake = wakeups.setdefault(uid, asyncio.Event())
    try:
        while not stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=reconciler.settings.drift_interval_s)
            wake.clear()
            if stopped or body.metadata.get("deletionTimestamp"):
                break
            try:
                async with _lock(memo):
                    outcome = await reconciler.converge(body, full=False)
                _metrics.reconciled(body.metadata.name or "", outcome, drift=True)
            except Exception as exc:  # keep watching; the next round retries
                _metrics.failed(body.metadata.name or "")
                logger.warning("drift check failed: %s", exc)
    finally:
        wakeups.pop(uid, None)


def _wake_owner(body: kopf.Body, memo: kopf.Memo) -> None:
    uid = owner_uid(body)
    wake = memo.wakeups.get(uid) if uid else None
    if wake is not None:
        wake.set()


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_LABELS)
@kopf.on.event("", "v1", "configmaps", labels=CHILD_LABELS)
@kopf.on.event("", "v1", "services", labels=CHILD_LABELS)
@kopf.on.event("kafka.strimzi.io", "v1beta2", "kafkatopics", labels=CHILD_LABELS)
async def child_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """An owned object changed or went away: let its pipeline's daemon look now."""
    _wake_owner(body, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def tear_down(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Delete owned objects; keep or delete topics as spec.kafka.topics.deletionPolicy says."""
    reconciler: Reconciler = memo.reconciler
    async with _lock(memo):
        await reconciler.tear_down(body)
    logger.info("owned objects deleted")

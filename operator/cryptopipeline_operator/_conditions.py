"""Status conditions, computed from what was observed: pure functions, no I/O.

A condition keeps its `lastTransitionTime` while its status stays the same, so writing the
same observations twice writes the same status (and the API server stores nothing new).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

TOPICS_READY: Final = "TopicsReady"
MIGRATIONS_APPLIED: Final = "MigrationsApplied"
WORKLOADS_AVAILABLE: Final = "WorkloadsAvailable"
READY: Final = "Ready"
PARTS: Final = (TOPICS_READY, MIGRATIONS_APPLIED, WORKLOADS_AVAILABLE)

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One observation: `type` is True/False/Unknown, with a CamelCase reason and a message."""

    type: str
    status: Status
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def true(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, "True", reason, message)


def false(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, "False", reason, message)


def unknown(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, "Unknown", reason, message)


def ready(parts: Iterable[Condition]) -> Condition:
    """Ready is True when every part is; otherwise it names the first part that is not."""
    for part in parts:
        if not part.ok:
            return Condition(READY, "False", part.reason, f"{part.type}: {part.message}")
    return true(READY, "Ready", "topics, migrations and workloads are ready")


def merge(
    previous: Sequence[Mapping[str, Any]] | None,
    current: Iterable[Condition],
    *,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """The conditions list to write: `current`, keeping transition times that still hold."""
    before = {str(c.get("type")): c for c in previous or ()}
    out: list[dict[str, Any]] = []
    for cond in current:
        old = before.get(cond.type)
        since = now
        if old is not None and old.get("status") == cond.status and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }
        )
    return out


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Condition | None:
    """A condition of a status as written before, if there is one."""
    for cond in conditions or ():
        if cond.get("type") == type_:
            raw = cond.get("status")
            status: Status = "True" if raw == "True" else "False" if raw == "False" else "Unknown"
            return Condition(
                type_, status, str(cond.get("reason", "")), str(cond.get("message", ""))
            )
    return None


def transitions(
    previous: Sequence[Mapping[str, Any]] | None, current: Iterable[Condition]
) -> list[Condition]:
    """Conditions whose status or reason differ from before (what deserves an Event)."""
    changed = []
    for cond in current:
        old = find(previous, cond.type)
        if old is None or (old.status, old.reason) != (cond.status, cond.reason):
            changed.append(cond)
    return changed


# --- observations --------------------------------------------------------------------


def workload_state(deployment: Mapping[str, Any] | None) -> dict[str, int]:
    """The replica counts of a Deployment's status (zeros when absent)."""
    status = (deployment or {}).get("status") or {}
    spec = (deployment or {}).get("spec") or {}
    return {
        "replicas": int(spec.get("replicas", 0) or 0),
        "readyReplicas": int(status.get("readyReplicas", 0) or 0),
        "availableReplicas": int(status.get("availableReplicas", 0) or 0),
        "updatedReplicas": int(status.get("updatedReplicas", 0) or 0),
    }


def _deployment_available(deployment: Mapping[str, Any]) -> tuple[bool, str]:
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    wanted = int((deployment.get("spec") or {}).get("replicas", 0) or 0)
    if wanted == 0:
        return True, "paused (0 replicas)"
    if int(status.get("observedGeneration", 0) or 0) < int(meta.get("generation", 0) or 0):
        return False, "rollout not observed yet"
    updated = int(status.get("updatedReplicas", 0) or 0)
    available = int(status.get("availableReplicas", 0) or 0)
    if updated < wanted:
        return False, f"{updated}/{wanted} replicas updated"
    if available < wanted:
        return False, f"{available}/{wanted} replicas available"
    return True, f"{available}/{wanted} available"


def workloads_available(deployments: Mapping[str, Mapping[str, Any] | None]) -> Condition:
    """WorkloadsAvailable from each workload's Deployment (None: not found)."""
    waiting = []
    for name, deployment in deployments.items():
        if deployment is None:
            waiting.append(f"{name}: Deployment missing")
            continue
        ok, detail = _deployment_available(deployment)
        if not ok:
            waiting.append(f"{name}: {detail}")
    if waiting:
        return false(WORKLOADS_AVAILABLE, "Progressing", "; ".join(waiting))
    return true(WORKLOADS_AVAILABLE, "Available", f"{', '.join(deployments)} available")


def strimzi_topics_ready(topics: Mapping[str, Mapping[str, Any] | None]) -> Condition:
    """TopicsReady from KafkaTopic statuses (the Topic Operator sets Ready)."""
    waiting = []
    failed = []
    for name, topic in topics.items():
        conds = ((topic or {}).get("status") or {}).get("conditions") or []
        ready_cond = find(conds, "Ready")
        if topic is None:
            waiting.append(f"{name}: KafkaTopic missing")
        elif ready_cond is None or ready_cond.status == "Unknown":
            waiting.append(name)
        elif not ready_cond.ok:
            failed.append(f"{name}: {ready_cond.reason} {ready_cond.message}".strip())
    if failed:
        return false(TOPICS_READY, "TopicNotReady", "; ".join(failed))
    if waiting:
        return false(
            TOPICS_READY,
            "WaitingForTopicOperator",
            "KafkaTopics not Ready yet: " + ", ".join(waiting),
        )
    return true(TOPICS_READY, "TopicsReady", f"{len(topics)} KafkaTopics Ready")

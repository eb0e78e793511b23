"""Writing a CryptoPipeline's status, and an Event for each condition that changes.

Only what changed is patched, so converging twice with nothing new writes nothing; a
condition keeps its transition time while its status stays (`_conditions.merge`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import kopf

import cryptopipeline_operator._conditions as cond
from cryptopipeline_operator._conditions import Condition
from cryptopipeline_operator._kube import Kube, KubeError
from cryptopipeline_operator._spec import API_VERSION, KIND

#: Condition reasons that mean "not there yet", not "wrong": Normal events, not Warnings.
_PROGRESS_REASONS: Final = frozenset({"Progressing", "WaitingForTopicOperator", "Pending"})

EmitFn = Callable[[Mapping[str, Any], str, str, str], None]


def kopf_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about the resource (kopf queues and sends it)."""
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]


async def write_status(
    kube: Kube,
    body: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]],
    conditions: Sequence[Condition],
    fields: Mapping[str, Any],
    *,
    full: bool,
    now: str,
    emit: EmitFn,
) -> None:
    """Patch the status fields and conditions that differ from `body`'s; emit the changes."""
    meta = body["metadata"]
    old = dict(body.get("status") or {})
    generation = int(meta.get("generation", 0))
    if not full:  # drift checks do not claim to have handled a newer spec
        generation = int(old.get("observedGeneration", generation) or 0)
    new = {
        **fields,
        "observedGeneration": generation,
        "conditions": cond.merge(previous, conditions, generation=generation, now=now),
    }
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if changed:
        try:
            await kube.merge_patch(
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
        type_ = "Normal" if transition.ok or transition.reason in _PROGRESS_REASONS else "Warning"
        emit(body, type_, transition.reason, f"{transition.type}: {transition.message}")

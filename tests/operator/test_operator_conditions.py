"""Status conditions from observations: pure functions, no cluster."""

from __future__ import annotations

import subprocess
import sys

from cryptopipeline_operator import OperatorSettings
from cryptopipeline_operator import _conditions as cond


def test_merge_keeps_transition_time_while_status_holds() -> None:
    first = cond.merge(
        None, [cond.false("TopicsReady", "WaitingForTopicOperator", "a")], generation=1, now="t1"
    )
    assert first == [
        {
            "type": "TopicsReady",
            "status": "False",
            "reason": "WaitingForTopicOperator",
            "message": "a",
            "observedGeneration": 1,
            "lastTransitionTime": "t1",
        }
    ]
    same = cond.merge(
        first, [cond.false("TopicsReady", "KafkaUnreachable", "b")], generation=2, now="t2"
    )
    assert same[0]["lastTransitionTime"] == "t1"
    assert same[0]["reason"] == "KafkaUnreachable"
    flipped = cond.merge(
        same, [cond.true("TopicsReady", "TopicsReady", "c")], generation=2, now="t3"
    )
    assert flipped[0]["lastTransitionTime"] == "t3"


def test_ready_names_the_first_failing_part() -> None:
    parts = [
        cond.true(cond.TOPICS_READY, "TopicsCreated", "4 topics"),
        cond.false(cond.MIGRATIONS_APPLIED, "MigrationFailed", "V2 failed"),
        cond.false(cond.WORKLOADS_AVAILABLE, "Progressing", "bot: 0/1 available"),
    ]
    ready = cond.ready(parts)
    assert (ready.status, ready.reason) == ("False", "MigrationFailed")
    assert ready.message == "MigrationsApplied: V2 failed"
    assert cond.ready(parts[:1]).ok


def test_transitions_are_status_or_reason_changes() -> None:
    before = cond.merge(None, [cond.false("Ready", "A", "x")], generation=1, now="t")
    assert cond.transitions(before, [cond.false("Ready", "A", "other message")]) == []
    changed = [cond.false("Ready", "B", "x")]
    assert cond.transitions(before, changed) == changed


def deployment(
    wanted: int, available: int, generation: int = 1, observed: int = 1
) -> dict[str, object]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": available,
            "availableReplicas": available,
            "readyReplicas": available,
        },
    }


def test_workloads_available() -> None:
    ok = cond.workloads_available({"ingestor": deployment(1, 1), "bot": deployment(0, 0)})
    assert ok.ok and ok.reason == "Available"
    waiting = cond.workloads_available(
        {"ingestor": deployment(1, 0), "signaler": deployment(1, 1, generation=2), "bot": None}
    )
    assert (waiting.status, waiting.reason) == ("False", "Progressing")
    assert waiting.message == (
        "ingestor: 0/1 replicas updated; signaler: rollout not observed yet; "
        "bot: Deployment missing"
    )
    assert cond.workload_state(deployment(1, 1)) == {
        "replicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "updatedReplicas": 1,
    }


def test_strimzi_topics_ready() -> None:
    def topic(status: str | None) -> dict[str, object]:
        conds = [] if status is None else [{"type": "Ready", "status": status, "reason": "R"}]
        return {"status": {"conditions": conds}}

    assert cond.strimzi_topics_ready({"a": topic("True"), "b": topic("True")}).ok
    waiting = cond.strimzi_topics_ready({"a": topic(None), "b": None})
    assert waiting.reason == "WaitingForTopicOperator"
    assert cond.strimzi_topics_ready({"a": topic("False")}).reason == "TopicNotReady"


def test_backoff_doubles_up_to_the_cap() -> None:
    settings = OperatorSettings(retry_initial_s=5, retry_max_s=60)
    assert [settings.backoff(n) for n in range(6)] == [5, 10, 20, 40, 60, 60]


def test_console_script_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cryptopipeline_operator.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--peering" in done.stdout and "--standalone" in done.stdout

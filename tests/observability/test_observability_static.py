"""Dashboards and alert rules without a server: structure, promtool, and metric names."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from obs_support import REPO, RULES, Workloads, alert_rules, dashboards, used_metric_names

from tooling import tool_missing

PROMTOOL = shutil.which("promtool")


@pytest.fixture
def _promtool() -> None:
    if PROMTOOL is None:
        tool_missing("chart-tools", "promtool not installed (Debian's prometheus package)")


needs_promtool = pytest.mark.usefixtures("_promtool")


@needs_promtool
def test_promtool_check_rules() -> None:
    done = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


@needs_promtool
def test_promtool_unit_tests_of_every_alert() -> None:
    tests = REPO / "tests" / "observability" / "rules_test.yaml"
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(tests)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tested = tests.read_text()
    for rule in alert_rules():  # each alert has a firing and a silent case
        assert tested.count(f"alertname: {rule['alert']}") >= 2, rule["alert"]


def test_the_issues_alerts_exist() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert {"CryptoPipelineIngestStalled", "CryptoPipelineIngestGapsSustained",
            "CryptoPipelineConsumerLagGrowing", "CryptoPipelineDeadLettersGrowing",
            "CryptoPipelineDailyLossLimitHit", "CryptoPipelineKillSwitchOn"} <= names  # fmt: skip
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_committed_dashboards_are_the_generators_output() -> None:
    done = subprocess.run([sys.executable, str(REPO / "charts" / "dashboards.py"), "--check"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_dashboard_structure() -> None:
    """What Grafana needs to import a dashboard (checked by hand; see docs/observability.md)."""
    dash = dashboards()
    assert set(dash) == {"overview", "ingestor", "signaler", "bot", "operator"}
    assert len({d["uid"] for d in dash.values()}) == len(dash)
    for name, d in dash.items():
        assert d["schemaVersion"] >= 36 and d["title"] and len(d["uid"]) <= 40, name
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in d["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0, (name, p["title"])
            assert p["type"] in {"timeseries", "stat"}
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"], (name, p["title"])
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
            for t in p["targets"]:
                assert 'namespace=~"$namespace"' in t["expr"], (name, p["title"])
                assert 'pipeline=~"$pipeline"' in t["expr"], (name, p["title"])
    overview = " ".join(p["title"].lower() for p in dash["overview"]["panels"])
    for topic in ("ingest", "gaps", "backfill", "reconnect", "dead letter", "latency", "lag",
                  "signal", "order", "pnl", "kill switch"):  # fmt: skip
        assert topic in overview, topic


def test_every_metric_used_is_exported_by_the_code() -> None:
    exported = Workloads().exported_names()
    used = used_metric_names()
    assert used, "no metric found in dashboards or rules"
    missing = sorted(used - exported)
    assert not missing, f"used in dashboards/rules but exported by no workload: {missing}"

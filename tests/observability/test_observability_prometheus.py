"""A real Prometheus (Debian's package) scrapes the workloads' real metric registries on
127.0.0.1, loads the chart's alert rules, and answers every dashboard query.

Each registry is the class the program itself builds (IngestorMetrics, SignalerMetrics,
BotMetrics, the operator's REGISTRY), served by prometheus_client on its own port and
driven into a troubled state (see obs_support.Workloads), so that:
- every query of every dashboard returns data (no misspelt metric or label), and
- every alert's condition holds: Prometheus reports each alert pending or firing.
The scrape adds no label of its own: `pipeline` and `workload` come from the registries
(cryptopipeline.core.metrics), as they do on Kubernetes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obs_support import PIPELINE, RULES, Workloads, alert_rules, dashboard_queries
from prometheus_client import start_http_server

from cryptopipeline.localkafka._broker import free_port
from tooling import tool_missing

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    if PROMETHEUS is None:
        tool_missing("chart-tools", "prometheus not installed (Debian's prometheus package)")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        return list(data["result"])


def _wait(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not within {within}s: {what}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workloads = Workloads()
    servers = []
    jobs = []
    for name, registry in workloads.registries().items():
        port = free_port()
        server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        jobs.append(
            {
                "job_name": name,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
        )
    stop = threading.Event()

    def drive() -> None:
        while not stop.wait(0.25):
            workloads.tick()

    driver = threading.Thread(target=drive, name="metrics-driver", daemon=True)
    driver.start()
    home: Path = tmp_path_factory.mktemp("prometheus")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)], "scrape_configs": jobs}  # fmt: skip
    (home / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log = (home / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={home / 'prometheus.yml'}",
         f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    prom = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait(lambda: urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2).status == 200,
              60, "prometheus ready")  # fmt: skip
        # rates need a few samples: wait until every target was scraped at least 4 times
        _wait(lambda: len(prom.query("count_over_time(up[1m]) >= 4")) == len(jobs), 60,
              "4 scrapes of every target")  # fmt: skip
        yield prom
    finally:
        stop.set()
        driver.join()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for server in servers:
            server.shutdown()


def test_every_target_is_up(prometheus: Prometheus) -> None:
    up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
    assert up == {"ingestor": "1", "signaler": "1", "bot": "1", "operator": "1"}


@pytest.mark.parametrize(("dashboard", "panel", "expr"), dashboard_queries(),
                         ids=[f"{d}:{p}" for d, p, _ in dashboard_queries()])  # fmt: skip
def test_every_dashboard_query_returns_data(
    prometheus: Prometheus, dashboard: str, panel: str, expr: str
) -> None:
    assert prometheus.query(expr), f"{dashboard} / {panel}: no data for {expr}"


def test_shared_labels_reach_every_series(prometheus: Prometheus) -> None:
    """pipeline and workload are on every series, as the programs expose them."""
    series = prometheus.query('{__name__=~"cryptopipeline_.+"}')
    assert series
    for s in series:
        labels = s["metric"]
        if labels["job"] == "operator":
            # one operator serves many pipelines: its series name the resource they concern
            # (other tests in the same process may have counted for theirs)
            assert labels.get("pipeline"), labels
        else:
            assert labels.get("pipeline") == PIPELINE, labels
        assert labels.get("workload") == labels["job"], labels


def test_every_alert_condition_holds_in_prometheus(prometheus: Prometheus) -> None:
    wanted = {r["alert"] for r in alert_rules()}

    def states() -> dict[str, str]:
        groups = prometheus.get("/api/v1/rules", type="alert")["groups"]
        return {r["name"]: r["state"] for g in groups for r in g["rules"]}

    _wait(lambda: all(states().get(a) in {"pending", "firing"} for a in wanted), 30,
          f"every alert pending or firing: {states()}")  # fmt: skip
    got = states()
    assert set(got) == wanted
    for rule in alert_rules():
        if rule["for"] == "0m":
            assert got[rule["alert"]] == "firing", rule["alert"]

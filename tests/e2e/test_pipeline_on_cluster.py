"""The whole product on a real one-node cluster: helm install, kubectl apply, trades flow.

In file order (later tests build on the state earlier ones leave): the pipeline reaches
Ready; its pods run as the chart promises; ticks land in Kafka exactly once against the
simulator's ground truth; signals and paper orders follow; pods deleted mid-stream come back
with nothing lost or doubled; spec changes roll, invalid ones are refused; deleting the
pipeline removes what it owned; helm upgrade and uninstall behave as docs/deploy.md says.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections import Counter
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from e2e_support import (
    CHART,
    MANIFESTS,
    REPO_ROOT,
    Cluster,
    Records,
    http_json,
    pod_ready,
    pods,
    poll,
    read_topic,
    ready_pods,
    trade_ids,
    values,
)

from conftest import OPERATOR_PODS, RELEASE, SIM_PODS

WORKLOADS = ("ingestor", "signaler", "bot")
PRODUCT = "BTC-USD"


def workload_pods(component: str) -> str:
    return f"app.kubernetes.io/instance=btc,app.kubernetes.io/component={component}"


def truth(sim_url: str, product: str = PRODUCT) -> list[int]:
    """Every trade id coinbase-sim published for `product`, in order (its ground truth)."""
    return [int(t["trade_id"]) for t in http_json(f"{sim_url}/sim/trades?product_id={product}")]


async def assert_exactly_once(bootstrap: str, sim_url: str, product: str = PRODUCT) -> Records:
    """Up to the simulator's latest trade now, `btc_usd` holds each of its trades once."""
    expected = poll(f"{product} trades published by coinbase-sim", lambda: truth(sim_url, product))
    mark = expected[-1]
    records = await read_topic(bootstrap, "btc_usd", lambda r: mark in trade_ids(r, product))
    published = trade_ids(records, product)
    published = published[: published.index(mark) + 1]
    missing = sorted(set(expected) - set(published))
    doubled = [tid for tid, n in Counter(published).items() if n > 1]
    assert not missing and not doubled, (
        f"{len(missing)} missing {missing[:5]}, doubled {doubled[:5]}"
    )
    assert published == expected
    return records


def test_the_pipeline_reaches_ready_and_its_printer_columns_show_it(
    cluster: Cluster, pipeline: dict[str, Any]
) -> None:
    table = cluster.kubectl("get", "cryptopipeline", "btc").splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:5] == ["NAME", "READY", "REASON", "PRODUCTS", "MODE"]
    assert row[0] == "btc" and row[1] == "True" and row[4] == "paper"
    assert pipeline["status"]["observedGeneration"] == pipeline["metadata"]["generation"]


def test_the_manifest_differs_from_the_example_only_in_kafka_and_exchange() -> None:
    example = yaml.safe_load((REPO_ROOT / "k8s" / "examples" / "pipeline.yaml").read_text())
    ours = yaml.safe_load((MANIFESTS / "pipeline.yaml").read_text())
    for doc in (example, ours):
        doc["spec"].pop("exchange", None)
        doc["spec"]["kafka"] = {"topics": doc["spec"]["kafka"]["topics"]}
    assert ours == example


def test_workload_pods_are_ready_and_run_as_the_chart_promises(
    cluster: Cluster, pipeline: dict[str, Any], release: dict[str, Any]
) -> None:
    for component in WORKLOADS:
        pod = ready_pods(cluster, workload_pods(component))[0]
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        container = spec["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        # what the kernel says, not what the spec asks for
        ids = cluster.kubectl("exec", pod["metadata"]["name"], "--", "id", "-u").strip()
        assert ids == "10001", f"{component} runs as uid {ids}"
    operator = ready_pods(cluster, OPERATOR_PODS)[0]
    assert (
        cluster.kubectl("exec", operator["metadata"]["name"], "--", "id", "-u").strip() == "10001"
    )


async def test_trades_flow_into_kafka_exactly_once(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str, coinbase_sim: str
) -> None:
    records = await assert_exactly_once(kafka_bootstrap, coinbase_sim)
    assert records, "btc_usd is empty"


async def test_signals_on_closed_candles_and_paper_orders_follow(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str
) -> None:
    orders = values(await read_topic(kafka_bootstrap, "btc_usd_orders", bool, within=300))
    assert {o["product_id"] for o in orders} == {PRODUCT}
    assert {o["broker"] for o in orders} == {"paper"}
    wanted = {o["signal_id"] for o in orders}

    def has_wanted(records: Records) -> bool:
        return wanted <= {s["signal_id"] for s in values(records)}

    # every order answers a signal the signaler published, on a closed 60 s candle
    signals = values(await read_topic(kafka_bootstrap, "btc_usd_trade_signals", has_wanted))
    for signal in signals:
        assert signal["product_id"] == PRODUCT
        assert signal["strategy"] in {"sma_crossover", "rsi_threshold"}
        assert signal["window"]["interval_s"] == 60
        assert signal["window"]["start"] < signal["window"]["end"]


def prom_query(prometheus: str, query: str) -> list[dict[str, Any]]:
    body = http_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_discovers_and_scrapes_every_workload_and_the_rules_evaluate(
    cluster: Cluster, pipeline: dict[str, Any], release: dict[str, Any], prometheus: str
) -> None:
    def all_up() -> set[str]:
        up = {r["metric"].get("component", "") for r in prom_query(prometheus, "up == 1")}
        return up if {*WORKLOADS, "operator"} <= up else set()

    poll("every workload and the operator scraped (up == 1)", all_up, within=120)
    published = poll(
        "the ingestor's published-records counter",
        lambda: prom_query(prometheus, "sum(cryptopipeline_ingestor_records_published_total) > 0"),
        within=120,
    )
    assert float(published[0]["value"][1]) > 0

    def evaluated() -> list[dict[str, Any]]:
        groups = http_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules
            if rules and all(r.get("lastEvaluation", "").startswith("2") for r in rules)
            else []
        )

    rules = poll("every alert rule evaluated once", evaluated, within=60)
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, f"rules that fail to evaluate: {broken}"


def delete_pods(cluster: Cluster, *selectors: str) -> None:
    names = [p["metadata"]["name"] for s in selectors for p in pods(cluster, s)]
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "--wait=false", *names)

    def replaced() -> bool:
        return all(
            any(p["metadata"]["name"] not in names and pod_ready(p) for p in pods(cluster, s))
            for s in selectors
        )

    poll(f"replacements for {names}", replaced)
    cluster.record(f"delete {' '.join(names)} -> replacements Ready", time.monotonic() - started)


async def assert_no_doubles(bootstrap: str) -> None:
    signals = values(await read_topic(bootstrap, "btc_usd_trade_signals", bool, within=120))
    doubled = [sid for sid, n in Counter(s["signal_id"] for s in signals).items() if n > 1]
    assert not doubled, f"signal ids published twice: {doubled[:5]}"
    orders = values(await read_topic(bootstrap, "btc_usd_orders", bool, within=120))
    # one signal, one order: received and submitted at most once per client_order_id
    events = Counter(
        (o["client_order_id"], o["event"])
        for o in orders
        if o["event"] in {"received", "submitted"}
    )
    assert not [k for k, n in events.items() if n > 1], "an order was received or submitted twice"


@pytest.mark.parametrize("component", [*WORKLOADS, "operator"])
async def test_a_pod_deleted_mid_stream_comes_back_and_nothing_is_lost_or_doubled(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str, coinbase_sim: str,
    component: str,
) -> None:  # fmt: skip
    selector = OPERATOR_PODS if component == "operator" else workload_pods(component)
    delete_pods(cluster, selector)
    await assert_exactly_once(kafka_bootstrap, coinbase_sim)
    await assert_no_doubles(kafka_bootstrap)


async def test_all_pods_deleted_at_once_come_back_and_nothing_is_lost_or_doubled(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str, coinbase_sim: str
) -> None:
    delete_pods(cluster, OPERATOR_PODS, *(workload_pods(c) for c in WORKLOADS))
    await assert_exactly_once(kafka_bootstrap, coinbase_sim)
    await assert_no_doubles(kafka_bootstrap)


def config_hash(cluster: Cluster, name: str) -> str:
    deployment = cluster.kubectl_json("get", "deployment", name)
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    return str(annotations.get("cryptopipeline.io/config-hash", ""))


async def test_adding_a_product_rolls_the_ingestor_and_its_trades_flow(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str, coinbase_sim: str
) -> None:
    before = config_hash(cluster, "btc-ingestor")
    patch = '{"spec":{"products":["BTC-USD","ETH-USD"]}}'
    cluster.kubectl("patch", "cryptopipeline", "btc", "--type", "merge", "-p", patch)
    poll(
        "the ingestor's pod template changes",
        lambda: config_hash(cluster, "btc-ingestor") != before,
    )
    poll(
        "a Ready ingestor with the new configuration",
        lambda: any(
            pod_ready(p)
            and p["metadata"]["annotations"].get("cryptopipeline.io/config-hash")
            == config_hash(cluster, "btc-ingestor")
            for p in pods(cluster, workload_pods("ingestor"))
        ),
    )
    records = await read_topic(
        kafka_bootstrap, "btc_usd", lambda r: bool(trade_ids(r, "ETH-USD")), within=180
    )
    assert trade_ids(records, "ETH-USD")
    await assert_exactly_once(kafka_bootstrap, coinbase_sim)


async def test_a_strategy_parameter_change_rolls_the_signaler_and_takes_effect(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str
) -> None:
    before = config_hash(cluster, "btc-signaler")
    patch = (
        '[{"op":"replace","path":"/spec/strategies/1/parameters",'
        '"value":{"period":5,"oversold":45,"overbought":55}}]'
    )
    cluster.kubectl("patch", "cryptopipeline", "btc", "--type", "json", "-p", patch)
    poll(
        "the signaler's pod template changes",
        lambda: config_hash(cluster, "btc-signaler") != before,
    )
    ready_pods(cluster, workload_pods("signaler"))

    def new_params(records: Records) -> bool:
        return any(
            s["strategy"] == "rsi_threshold" and s.get("parameters", {}).get("period") == 5
            for s in values(records)
        )

    try:
        await read_topic(kafka_bootstrap, "btc_usd_trade_signals", new_params, within=300)
    except AssertionError:
        pod = ready_pods(cluster, workload_pods("signaler"))[0]["metadata"]["name"]
        raise AssertionError(
            "no rsi_threshold signal with period 5; the signaler's log ends:\n"
            + "\n".join(cluster.kubectl("logs", pod, check=False).splitlines()[-30:])
        ) from None


def test_an_invalid_change_is_rejected_with_the_crds_message(
    cluster: Cluster, pipeline: dict[str, Any]
) -> None:
    bad = yaml.safe_load((MANIFESTS / "pipeline.yaml").read_text())
    bad["spec"]["exchange"]["channels"] = ["ticker"]
    out = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad), check=False)
    assert "channels must include heartbeat" in out
    live = cluster.kubectl_json("get", "cryptopipeline", "btc")
    assert "ticker" in live["spec"]["exchange"]["channels"]
    assert "heartbeat" in live["spec"]["exchange"]["channels"]


async def test_deleting_the_pipeline_removes_what_it_owned_and_keeps_the_topics(
    cluster: Cluster, pipeline: dict[str, Any], kafka_bootstrap: str
) -> None:
    owned = "app.kubernetes.io/instance=btc"
    assert cluster.kubectl("get", "deployments,configmaps,services", "-l", owned, "-o", "name")
    cluster.kubectl("delete", "cryptopipeline", "btc", "--timeout=180s")
    poll(
        "the owned objects are gone",
        lambda: (
            not cluster.kubectl(
                "get", "deployments,configmaps,services,pods", "-l", owned, "-o", "name"
            ).strip()
        ),
    )
    topics = await list_topics(kafka_bootstrap)
    # deletionPolicy: Retain
    assert {"btc_usd", "btc_usd_trade_signals", "btc_usd_orders"} <= topics


async def list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_pipeline_with_deletion_policy_delete_takes_its_topics_along(
    cluster: Cluster, release: dict[str, Any], coinbase_sim: str, kafka_bootstrap: str
) -> None:
    doc = yaml.safe_load((MANIFESTS / "pipeline.yaml").read_text())
    doc["metadata"]["name"] = "eth"
    doc["spec"]["products"] = ["ETH-USD"]
    names = {"raw": "eth_usd", "deadLetter": "eth_usd_dlq",
             "tradeSignals": "eth_usd_trade_signals", "orders": "eth_usd_orders"}  # fmt: skip
    doc["spec"]["kafka"]["topics"].update(deletionPolicy="Delete", names=names)
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    await wait_topics(kafka_bootstrap, set(names.values()), present=True)
    cluster.kubectl("delete", "cryptopipeline", "eth", "--timeout=180s")
    await wait_topics(kafka_bootstrap, set(names.values()), present=False)
    assert "btc_usd" in await list_topics(kafka_bootstrap)  # the other pipeline's stay


async def wait_topics(bootstrap: str, names: set[str], *, present: bool) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        topics = await list_topics(bootstrap)
        if (names <= topics) if present else not (names & topics):
            return
        await asyncio.sleep(1)  # the topic list has no event to await
    raise AssertionError(f"topics {sorted(names)} {'missing' if present else 'still there'}")


def test_helm_upgrade_rolls_the_operator_and_uninstall_keeps_the_crd(
    cluster: Cluster, release: dict[str, Any]
) -> None:
    before = ready_pods(cluster, OPERATOR_PODS)[0]["metadata"]["name"]
    done = cluster.helm(
        "upgrade", RELEASE, str(CHART), "--namespace", "default", "--reuse-values",
        "--set", "operator.verbose=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    deployment = cluster.kubectl_json("get", "deployment", "-l", OPERATOR_PODS)["items"][0]
    assert "--verbose" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    poll(
        "a new Ready operator pod",
        lambda: [
            p
            for p in pods(cluster, OPERATOR_PODS)
            if p["metadata"]["name"] != before and pod_ready(p)
        ],
    )
    done = cluster.helm("uninstall", RELEASE, "--namespace", "default", "--wait")
    assert done.returncode == 0, done.stderr
    poll("the operator is gone", lambda: not pods(cluster, OPERATOR_PODS))
    assert cluster.kubectl("get", "crd", "cryptopipelines.cryptopipeline.io", "-o", "name").strip()
    cluster.kubectl("delete", "-f", str(MANIFESTS / "coinbase-sim.yaml"))
    poll("coinbase-sim is gone", lambda: not pods(cluster, SIM_PODS))

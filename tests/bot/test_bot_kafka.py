"""The bot against the real Kafka broker: paper end to end, recovery, the kill switch, and
kill -9 between submitting an order and logging its outcome (Coinbase broker vs coinbase-sim).
"""

from __future__ import annotations

import asyncio
import os
import signal as signals
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from bot_support import KEY_NAME, new_key_pem, signal, ticker, trading_sim, write_keys

from cryptopipeline.bot import Bot, BotSettings, PaperBroker, read_order_log
from cryptopipeline.bot._orderlog import read_topic
from cryptopipeline.bot._settings import BotOpsSettings, TradingSettings
from cryptopipeline.core import KafkaSettings, TopicNames
from cryptopipeline.localkafka._broker import free_port
from cryptopipeline.records import Action, TradeSignal
from cryptopipeline.trading import (
    BrokerUpdate,
    OrderEventType,
    OrderRequest,
    RiskLimits,
    client_order_id_for,
)

pytestmark = pytest.mark.kafka


def topics() -> TopicNames:
    tag = uuid.uuid4().hex[:8]
    return TopicNames(raw=f"raw_{tag}", trade_signals=f"sig_{tag}", orders=f"ord_{tag}",
                      dead_letter=f"dlq_{tag}")  # fmt: skip


async def produce(kafka: KafkaSettings, topic: str, items: Sequence[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def until(condition: Callable[[], bool | Awaitable[bool]], within: float = 30.0) -> None:
    """Polls: the state is in another task or process and offers nothing to await."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.05)


class CountingBroker(PaperBroker):
    def __init__(self) -> None:
        super().__init__(taker_fee_bps=Decimal(60))
        self.submitted: list[str] = []

    async def submit(self, order: OrderRequest) -> BrokerUpdate:
        self.submitted.append(order.client_order_id)
        return await super().submit(order)


def paper_settings(kafka: KafkaSettings, names: TopicNames) -> BotSettings:
    return BotSettings(
        kafka=kafka, topics=names, consumer_group=f"bot-{uuid.uuid4().hex[:8]}",
        ops=BotOpsSettings(port=0, kill_token="let-me-kill"),  # type: ignore[arg-type]
        trading=TradingSettings(starting_cash=Decimal("10000")),
        risk=RiskLimits(max_order_notional=Decimal("150"), stale_price_s=3600),
        poll_interval_s=0.1,
    )  # fmt: skip


AUTH = {"Authorization": "Bearer let-me-kill"}


def encoded(s: TradeSignal) -> tuple[str, bytes]:
    return s.product_id, s.model_dump_json().encode()


async def test_paper_bot_end_to_end_recovery_and_kill_switch(kafka_settings: KafkaSettings) -> None:
    names = topics()
    settings = paper_settings(kafka_settings, names)
    broker = CountingBroker()
    bot = Bot(settings, broker)
    stop = asyncio.Event()
    tick = ticker("BTC-USD", Decimal("60000.00"), Decimal("60000.10"))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(bot.run(stop))
        await until(lambda: bot.consuming)
        await produce(kafka_settings, names.raw, [("BTC-USD", orjson.dumps(tick))])
        await until(lambda: "BTC-USD" in bot.market.books)
        buy, again, sell = signal(1), signal(1), signal(2, Action.SELL)
        await produce(
            kafka_settings, names.trade_signals, [encoded(buy), encoded(again), encoded(sell)]
        )
        sell_id = client_order_id_for(sell.signal_id)
        await until(lambda: sell_id in bot.blotter.orders and bot.blotter.orders[sell_id].terminal)
        assert broker.submitted == [client_order_id_for(buy.signal_id), sell_id]  # no duplicate
        portfolio = bot.blotter.portfolio
        # 100 USD at 60000.10 -> 0.00166666 BTC (floored to 1e-8); sold back at 60000.00
        assert portfolio.quantity("BTC-USD") == 0
        size = Decimal("0.00166666")
        fees = size * Decimal("60000.10") * Decimal("0.006") + size * Decimal("60000.00") * Decimal(
            "0.006"
        )
        assert portfolio.fees == fees
        assert portfolio.cash == Decimal("10000") - size * Decimal("0.10") - fees

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot.ops.port}") as http:  # type: ignore[union-attr]
            assert (await http.get("/api/portfolio")).status_code == 401  # behind the token
            view = (await http.get("/api/portfolio", headers=AUTH)).json()
            assert Decimal(view["cash"]) == portfolio.cash and view["kill_switch"] is False
            assert (await http.post("/api/kill")).status_code == 401
            assert (
                await http.post("/api/kill", headers={"Authorization": "Bearer nope"})
            ).status_code == 401
            killed = await http.post("/api/kill", headers={"Authorization": "Bearer let-me-kill"})
            assert killed.status_code == 200
            metrics = (await http.get("/metrics")).text
            assert 'cryptopipeline_bot_kill_switch{pipeline="local",workload="bot"} 1.0' in metrics
        late = signal(3)
        await produce(kafka_settings, names.trade_signals, [encoded(late)])
        late_id = client_order_id_for(late.signal_id)
        await until(lambda: late_id in bot.blotter.orders and bot.blotter.orders[late_id].terminal)
        assert bot.blotter.orders[late_id].reason == "kill_switch"
        assert late_id not in broker.submitted  # no new order reached the broker
        stop.set()

    events = await read_order_log(kafka_settings, names.orders)
    kinds = [(e.client_order_id, e.event) for e in events]
    assert (late_id, OrderEventType.REJECTED) in kinds
    assert next(k for k in kinds if k[0] == sell_id)[1] is OrderEventType.RECEIVED
    # a new bot rebuilds the same portfolio from the log
    again_bot = Bot(paper_settings(kafka_settings, names), PaperBroker())
    await again_bot.recover()
    assert again_bot.blotter.portfolio.snapshot()["cash"] == portfolio.snapshot()["cash"]
    assert again_bot.blotter.portfolio.fees == portfolio.fees


async def test_rejections_are_logged_with_their_reason(kafka_settings: KafkaSettings) -> None:
    names = topics()
    settings = paper_settings(kafka_settings, names)
    settings = settings.model_copy(
        update={"risk": RiskLimits(max_order_notional=Decimal("50"), stale_price_s=3600)}
    )
    bot = Bot(settings, CountingBroker())
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(bot.run(stop))
        await until(lambda: bot.consuming)
        nothing = signal(20)  # no tick yet: no price
        await produce(kafka_settings, names.trade_signals, [encoded(nothing)])
        coid = client_order_id_for(nothing.signal_id)
        await until(lambda: coid in bot.blotter.orders and bot.blotter.orders[coid].terminal)
        assert bot.blotter.orders[coid].reason == "no_price"
        tick = ticker("BTC-USD", Decimal("60000.00"), Decimal("60000.10"))
        forged = [tick | {"best_bid": "sNaN"}, tick | {"best_ask": "Infinity"},
                  tick | {"best_bid": None, "price": "NaN"}]  # fmt: skip
        await produce(kafka_settings, names.raw,
                      [("BTC-USD", orjson.dumps(t)) for t in [*forged, tick]])  # fmt: skip
        await until(lambda: "BTC-USD" in bot.market.books)  # read past the forged ones: running
        assert bot.metrics.bad_input.labels("tick", "bad_decimal")._value.get() == 3
        big = signal(21)
        await produce(kafka_settings, names.trade_signals, [encoded(big)])
        coid = client_order_id_for(big.signal_id)
        await until(lambda: coid in bot.blotter.orders and bot.blotter.orders[coid].terminal)
        assert bot.blotter.orders[coid].reason == "max_order_notional"
        stop.set()


# ---- kill -9 between submit and outcome, with the Coinbase broker against the simulator -----


def _bot_env(kafka: KafkaSettings, names: TopicNames, trade_url: str, pem: str, port: int,
             group: str) -> dict[str, str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPIPELINE_")}
    env.update({
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CRYPTOPIPELINE_TOPICS__RAW": names.raw,
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": names.trade_signals,
        "CRYPTOPIPELINE_TOPICS__ORDERS": names.orders,
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": names.dead_letter,
        "CRYPTOPIPELINE_CONSUMER_GROUP": group,
        "CRYPTOPIPELINE_BROKER__MODE": "coinbase",
        "CRYPTOPIPELINE_BROKER__API_URL": trade_url,
        "CRYPTOPIPELINE_BROKER__KEY_NAME": KEY_NAME,
        "CRYPTOPIPELINE_BROKER__PRIVATE_KEY": pem,
        "CRYPTOPIPELINE_TRADING__STARTING_CASH": "100000",
        "CRYPTOPIPELINE_RISK__STALE_PRICE_S": "3600",
        "CRYPTOPIPELINE_RISK__MAX_ORDER_NOTIONAL": "1000",
        "CRYPTOPIPELINE_OPS__PORT": str(port),
        "CRYPTOPIPELINE_OPS__KILL_TOKEN": "kill-token-for-tests",
        "CRYPTOPIPELINE_POLL_INTERVAL_S": "0.2",
        "CRYPTOPIPELINE_LOG_LEVEL": "DEBUG",
    })  # fmt: skip
    return env


TEST_AUTH = {"Authorization": "Bearer kill-token-for-tests"}


async def _start_bot(
    env: dict[str, str], out: Path, *, pause: bool = False
) -> asyncio.subprocess.Process:
    """The bot program; `pause`: paused_bot.py, which stops after the first broker answer."""
    program = [str(Path(__file__).with_name("paused_bot.py"))] if pause else [
        "-m", "cryptopipeline.bot.cli"]  # fmt: skip
    handle = out.open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable, *program, env=env, stdout=handle, stderr=handle
    )


async def test_kill_9_between_submit_and_outcome(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    private, public = new_key_pem()
    names = topics()
    group = f"bot-{uuid.uuid4().hex[:8]}"
    async with trading_sim(write_keys(tmp_path / "keys.json", public)) as sim:
        assert sim.trade_url is not None
        quote = sim.ledger.quote("BTC-USD")
        assert quote is not None
        port = free_port()
        env = _bot_env(kafka_settings, names, sim.trade_url, private, port, group)
        first_out = tmp_path / "first.log"
        bot = await _start_bot(env, first_out, pause=True)
        try:
            await until(lambda: _ready(port), within=60)
            tick = ticker("BTC-USD", quote.best_bid, quote.best_ask)
            await produce(kafka_settings, names.raw, [("BTC-USD", orjson.dumps(tick))])
            await asyncio.sleep(0.5)  # the tick consumer has no probe; give it a moment
            s = signal(100)
            coid = client_order_id_for(s.signal_id)
            await produce(kafka_settings, names.trade_signals, [encoded(s)])
            await until(
                lambda: b"TEST HOOK: paused after submit" in first_out.read_bytes(), within=60
            )
        finally:
            bot.send_signal(signals.SIGKILL)  # kill -9
            await bot.wait()
        assert bot.returncode == -signals.SIGKILL
        assert len([o for o in sim.account.orders.values() if o.client_order_id == coid]) == 1
        before = await read_order_log(kafka_settings, names.orders)
        assert [e.event for e in before if e.client_order_id == coid][
            -1
        ] is OrderEventType.SUBMITTED

        second_out = tmp_path / "second.log"
        env = _bot_env(kafka_settings, names, sim.trade_url, private, port, group)
        bot = await _start_bot(env, second_out)
        try:
            await until(lambda: _ready(port), within=60)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                view = (await http.get("/api/portfolio", headers=TEST_AUTH)).json()
                metrics = (await http.get("/metrics")).text
                readyz = (await http.get("/readyz")).text
                api = [(await http.post(path, headers=TEST_AUTH)).text
                       for path in ("/api/kill", "/api/release")]  # fmt: skip
            status = await _status_output(port)
        finally:
            bot.send_signal(signals.SIGTERM)
            await bot.wait()
        orders = [o for o in sim.account.orders.values() if o.client_order_id == coid]
        assert len(orders) == 1 and orders[0].status == "FILLED"
        assert sim.account.create_requests == 1  # looked up, never resent
        balances = sim.account.balances
        assert Decimal(view["cash"]) == balances["USD"]
        assert Decimal(view["positions"]["BTC-USD"]["quantity"]) == balances["BTC"]
        after = await read_order_log(kafka_settings, names.orders)
        assert [e.event for e in after if e.client_order_id == coid][-1] is OrderEventType.FILLED

        # secrets never leave: logs of both runs, metrics, the API and the order log
        body_lines = [line for line in private.splitlines() if "PRIVATE KEY" not in line]
        records = {}
        for topic in (names.raw, names.trade_signals, names.orders, f"{names.orders}_kill_switch"):
            got = await read_topic(kafka_settings, topic)
            records[f"topic {topic}"] = "\n".join(repr((r.key, r.value, r.headers)) for r in got)
        assert records[f"topic {names.orders}_kill_switch"].count("killed") == 2
        outputs = {
            "first run": first_out.read_text(), "second run": second_out.read_text(),
            "metrics": metrics, "portfolio": orjson.dumps(view).decode(), "readyz": readyz,
            "kill and release": "\n".join(api), "status": status, **records,
        }  # fmt: skip
        for where, text in outputs.items():
            assert KEY_NAME not in text, where
            assert "PRIVATE KEY" not in text, where
            assert not any(line in text for line in body_lines), where
            assert "eyJ" not in text, where  # no JWT (every JWT starts with base64 '{"')


async def test_a_bad_key_is_reported_and_never_leaks(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    _, public = new_key_pem()
    wrong_private, _ = new_key_pem()
    names = topics()
    async with trading_sim(write_keys(tmp_path / "keys.json", public)) as sim:
        quote = sim.ledger.quote("BTC-USD")
        assert sim.trade_url is not None and quote is not None
        port = free_port()
        env = _bot_env(kafka_settings, names, sim.trade_url, wrong_private, port,
                       f"bot-{uuid.uuid4().hex[:8]}")  # fmt: skip
        out = tmp_path / "bot.log"
        bot = await _start_bot(env, out)
        try:
            await until(lambda: _ready(port), within=60)
            tick = ticker("BTC-USD", quote.best_bid, quote.best_ask)
            await produce(kafka_settings, names.raw, [("BTC-USD", orjson.dumps(tick))])
            await asyncio.sleep(0.5)  # the tick consumer has no probe; give it a moment
            await produce(kafka_settings, names.trade_signals, [encoded(signal(200))])
            await until(lambda: b"broker refused our credentials" in out.read_bytes(), within=60)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                ready = await http.get("/readyz")
        finally:
            bot.send_signal(signals.SIGTERM)
            await bot.wait()
        assert ready.status_code == 503 and ready.json()["broker_auth_failed"] is True
        assert sim.account.orders == {}
        text = out.read_text()
        assert "refused the API key (401" in text
        assert KEY_NAME not in text and "PRIVATE KEY" not in text and "eyJ" not in text


async def _status_output(bot_port: int) -> str:
    """`cryptopipeline status` against this bot (the other parts are down: it says so)."""
    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.cli", "status", "--interval", "0.2",
        "--bot-port", str(bot_port), "--ingestor-port", str(free_port()),
        "--signaler-port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert status.stdout is not None
    lines: list[bytes] = []
    async with asyncio.timeout(30):
        while b"bot" not in b"".join(lines):  # the table's bot row
            line = await status.stdout.readline()
            assert line, b"".join(lines)
            lines.append(line)
        status.send_signal(signals.SIGINT)
        rest, _ = await status.communicate()
    return (b"".join(lines) + rest).decode(errors="replace")


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            return (await http.get("/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


# ---- the kill switch is durable: a real bot process, stopped and started again ---------------


def _paper_env(kafka: KafkaSettings, names: TopicNames, port: int, group: str) -> dict[str, str]:
    env = _bot_env(kafka, names, "http://127.0.0.1:9", "", port, group)
    for name in ("CRYPTOPIPELINE_BROKER__API_URL", "CRYPTOPIPELINE_BROKER__KEY_NAME",
                 "CRYPTOPIPELINE_BROKER__PRIVATE_KEY"):  # fmt: skip
        env.pop(name)
    env["CRYPTOPIPELINE_BROKER__MODE"] = "paper"
    return env


async def _stop(bot: asyncio.subprocess.Process) -> int:
    bot.send_signal(signals.SIGTERM)
    return await bot.wait()


async def _events_for(kafka: KafkaSettings, topic: str, coid: str) -> list[OrderEventType]:
    return [e.event for e in await read_order_log(kafka, topic) if e.client_order_id == coid]


async def test_the_kill_switch_survives_restarts_until_released(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    names = topics()
    port, group = free_port(), f"bot-{uuid.uuid4().hex[:8]}"
    env = _paper_env(kafka_settings, names, port, group)
    base = f"http://127.0.0.1:{port}"

    async def run_bot(n: int) -> asyncio.subprocess.Process:
        bot = await _start_bot(env, tmp_path / f"run{n}.log")
        await until(lambda: _ready(port), within=60)
        return bot

    async def trade(n: int) -> tuple[str, list[OrderEventType]]:
        s = signal(n)
        coid = client_order_id_for(s.signal_id)
        await produce(kafka_settings, names.trade_signals, [encoded(s)])

        async def settled() -> bool:
            events = await _events_for(kafka_settings, names.orders, coid)
            return any(e.terminal for e in events)

        await until(settled, within=60)
        return coid, await _events_for(kafka_settings, names.orders, coid)

    bot = await run_bot(1)
    try:
        tick = ticker("BTC-USD", Decimal("60000.00"), Decimal("60000.10"))
        await produce(kafka_settings, names.raw, [("BTC-USD", orjson.dumps(tick))])
        async with httpx.AsyncClient(base_url=base) as http:
            killed = await http.post("/api/kill", headers=TEST_AUTH)
            assert killed.status_code == 200 and killed.json() == {
                "kill_switch": True, "durable": True}  # fmt: skip
    finally:
        assert await _stop(bot) == 0  # a clean stop, then a clean start

    bot = await run_bot(2)
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).json()["kill_switch"] is True
            for n in (300, 301, 302):  # the signals that went out as orders before the fix
                _, events = await trade(n)
                assert events == [OrderEventType.RECEIVED, OrderEventType.REJECTED]
            metrics = (await http.get("/metrics")).text
            assert 'cryptopipeline_bot_kill_switch{pipeline="local",workload="bot"} 1.0' in metrics
            assert (await http.post("/api/release")).status_code == 401
            wrong = {"Authorization": "Bearer kill-token-for-tests-not"}
            assert (await http.post("/api/release", headers=wrong)).status_code == 401
            assert (await http.get("/readyz")).json()["kill_switch"] is True
            released = await http.post("/api/release", headers=TEST_AUTH)
            assert released.status_code == 200 and released.json() == {"kill_switch": False}
            _, events = await trade(303)
            assert events[-1] is OrderEventType.FILLED
    finally:
        assert await _stop(bot) == 0

    bot = await run_bot(3)  # the release is durable too
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).json()["kill_switch"] is False
    finally:
        assert await _stop(bot) == 0
    rejected = [e for e in await read_order_log(kafka_settings, names.orders)
                if e.event is OrderEventType.REJECTED]  # fmt: skip
    assert {e.reason for e in rejected} == {"kill_switch"} and len(rejected) == 3


async def test_forged_order_records_are_skipped_and_counted_at_recovery(
    kafka_settings: KafkaSettings,
) -> None:
    """Records read back from the order log are input too: a forged one must not stop the
    recovery (a `submitted` without a side used to raise in it) nor poison the portfolio."""
    names = topics()
    settings = paper_settings(kafka_settings, names)
    first = Bot(settings, CountingBroker())
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:  # a real run makes the topics and one real order
        tasks.create_task(first.run(stop))
        await until(lambda: first.consuming)
        tick = ticker("BTC-USD", Decimal("60000.00"), Decimal("60000.10"))
        await produce(kafka_settings, names.raw, [("BTC-USD", orjson.dumps(tick))])
        await until(lambda: "BTC-USD" in first.market.books)
        good = signal(400)
        await produce(kafka_settings, names.trade_signals, [encoded(good)])
        good_id = client_order_id_for(good.signal_id)
        await until(
            lambda: good_id in first.blotter.orders and first.blotter.orders[good_id].terminal
        )
        stop.set()
    base = {"schema_version": 1, "client_order_id": "forged-1", "signal_id": "forged-signal",
            "product_id": "BTC-USD", "time": "2026-01-01T00:00:00Z", "broker": "paper"}  # fmt: skip
    fill = {"fill_id": "forged-fill", "price": "1e999999", "size": "1e999999", "fee": "0"}
    forged = [
        b"not json at all",
        orjson.dumps(base | {"event": "submitted"}),  # no side, type or size
        orjson.dumps(base | {"event": "filled", "side": "BUY", "fill": fill}),
        orjson.dumps(base | {"event": "filled", "side": "BUY", "fill": fill | {"price": "sNaN"}}),
        orjson.dumps(
            base | {"event": "accepted", "side": "BUY", "order_type": "MARKET", "base_size": "-5"}
        ),
        b"[" * 50_000 + b"]" * 50_000,
    ]
    await produce(kafka_settings, names.orders, [("BTC-USD", value) for value in forged])

    again = Bot(paper_settings(kafka_settings, names), PaperBroker())
    await again.recover()  # must not raise
    assert "forged-1" not in again.blotter.orders
    assert again.blotter.portfolio.snapshot()["cash"] == first.blotter.portfolio.snapshot()["cash"]
    assert again.blotter.orders[good_id].state is OrderEventType.FILLED
    counted = sum(
        again.metrics.bad_input.labels("order_log", reason)._value.get()
        for reason in ("not_json", "schema", "bad_decimal", "bad_field")
    )
    assert counted == len(forged)
    await again.order_log.stop()

"""The simulator's Advanced Trade market-data feed (/advanced-trade), its public market-trades
REST endpoint, its subscribe checks (JWT included) and `--tls`."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sim_helpers import SimFactory, http, receive, subscribe
from websockets.asyncio.client import ClientConnection, connect

from cryptopipeline.coinbase._advanced_market import AUTHENTICATION_FAILURE, trim_time
from cryptopipeline.coinbase._time import parse_time, to_micros
from cryptopipeline.sim import SimServer
from cryptopipeline.sim._faults import FaultPlan


def _request(channel: str, products: list[str] | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"type": "subscribe", "channel": channel, **extra}
    if products is not None:
        body["product_ids"] = products
    return orjson.dumps(body).decode()


async def _advanced(server: SimServer, **kwargs: Any) -> ClientConnection:
    return await connect(server.advanced_ws_url, compression=None, max_queue=None, **kwargs)


async def _until(ws: ClientConnection, channel: str, within: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("channel") == channel or message.get("type") == "error":
                return message  # type: ignore[no-any-return]


async def _trades(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    trades: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len(trades) < count:
            message = orjson.loads(await ws.recv())
            if message.get("channel") == "market_trades":
                for event in message["events"]:
                    if event["type"] == "update":
                        trades.extend(reversed(event["trades"]))
    return trades[:count]


async def test_one_trade_is_the_same_on_both_feeds(sim: SimFactory) -> None:
    async with sim(await_subscribers=2, max_trades=200) as server:
        exchange = await connect(server.ws_url, compression=None, max_queue=None)
        advanced = await _advanced(server)
        await subscribe(exchange, ["matches"], ["BTC-USD"])
        await advanced.send(_request("market_trades", ["BTC-USD"]))
        matches = []
        async with asyncio.timeout(20):
            while len(matches) < 40:
                message = orjson.loads(await exchange.recv())
                if message["type"] == "match":
                    matches.append(message)
        trades = await _trades(advanced, 40)
        await exchange.close()
        await advanced.close()
    for match, trade in zip(matches, trades, strict=True):
        assert trade["trade_id"] == str(match["trade_id"])
        assert (trade["price"], trade["size"]) == (match["price"], match["size"])
        assert trade["side"] == match["side"].upper()  # both the maker's side
        assert trade["time"] == trim_time(match["time"])  # the same instant, trimmed
        assert parse_time(trade["time"]) == parse_time(match["time"])


async def test_sequence_num_heartbeats_and_snapshot(sim: SimFactory) -> None:
    async with sim(rate=50, speed=20, products=("BTC-USD",)) as server:
        await asyncio.sleep(0.5)  # some trades for the snapshot
        ws = await _advanced(server)
        await ws.send(_request("market_trades", ["BTC-USD"]))
        await ws.send(_request("heartbeats"))
        messages = []
        async with asyncio.timeout(20):
            while sum(m["channel"] == "heartbeats" for m in messages) < 3:
                messages.append(orjson.loads(await ws.recv()))
        await ws.close()
    assert [m["sequence_num"] for m in messages] == list(range(len(messages)))
    assert messages[0]["events"][0]["type"] == "snapshot"
    snapshot = [int(t["trade_id"]) for t in messages[0]["events"][0]["trades"]]
    assert snapshot and snapshot == sorted(snapshot, reverse=True)
    assert messages[1]["channel"] == "subscriptions"
    counters = [
        m["events"][0]["heartbeat_counter"] for m in messages if m["channel"] == "heartbeats"
    ]
    assert counters == list(range(counters[0], counters[0] + 3))
    assert all(set(m) == {"channel", "client_id", "timestamp", "sequence_num", "events"}
               for m in messages)  # fmt: skip


async def test_faults_show_as_sequence_gaps_and_repeats(sim: SimFactory) -> None:
    async with sim(rate=500, speed=1, products=("BTC-USD",)) as server:
        server.set_faults(FaultPlan(drop_rate=0.05, duplicate_rate=0.05))
        ws = await _advanced(server)
        await ws.send(_request("market_trades", ["BTC-USD"]))
        sequences = []
        async with asyncio.timeout(20):
            while len(sequences) < 400:
                sequences.append(orjson.loads(await ws.recv())["sequence_num"])
        await ws.close()
    steps = [b - a for a, b in itertools.pairwise(sequences)]
    assert 0 in steps  # a duplicated frame repeats its number
    assert any(step > 1 for step in steps)  # a dropped frame leaves a gap


async def test_bad_subscribes_get_an_error_and_others_keep_trading(sim: SimFactory) -> None:
    async with sim(rate=200, speed=1, products=("BTC-USD",)) as server:
        good = await _advanced(server)
        await good.send(_request("market_trades", ["BTC-USD"]))
        bad = await _advanced(server)
        answers = []
        requests = [
            "not json",
            '{"type":"subscribe"}',
            _request("user", ["BTC-USD"]),
            _request("market_trades", ["NOPE-USD"]),
            _request("level2", ["BTC-USD"]),
        ]
        for raw in requests:
            await bad.send(raw)
            answers.append(await receive(bad))
        await bad.send(b"\x00binary")
        answers.append(await receive(bad))
        trades = await _trades(good, 20)
        await good.close()
        await bad.close()
    assert all(a["type"] == "error" and set(a) == {"type", "message"} for a in answers)
    assert answers[2]["message"] == AUTHENTICATION_FAILURE  # user needs a JWT
    assert "product" in answers[3]["message"]
    assert len(trades) == 20
    assert server.stats.bad_requests == len(answers)


def _keys(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "keys.json"
    path.write_bytes(orjson.dumps({"organizations/o/apiKeys/k": pem.decode()}))
    return key, path


def _jwt(key: ec.EllipticCurvePrivateKey, name: str = "organizations/o/apiKeys/k") -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": "cdp", "sub": name, "nbf": now, "exp": now + 120},
        key,
        algorithm="ES256",
        headers={"kid": name, "nonce": secrets.token_hex()},
    )


async def test_required_auth_checks_the_jwt(sim: SimFactory, tmp_path: Path) -> None:
    key, keys = _keys(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    async with sim(rate=50, speed=1, advanced_auth="required", trade_keys=keys) as server:
        ws = await _advanced(server)
        token = _jwt(key)
        cases = [
            _request("market_trades", ["BTC-USD"]),  # no JWT
            _request("market_trades", ["BTC-USD"], jwt=_jwt(other)),  # wrong key
            _request("market_trades", ["BTC-USD"], jwt="x.y.z"),  # not a JWT
            _request("market_trades", ["BTC-USD"], jwt=token),  # good
            _request("heartbeats", jwt=token),  # the same nonce again
        ]
        answers = []
        for raw in cases:
            await ws.send(raw)
            answers.append(await _until(ws, "subscriptions"))
        await ws.close()
    kinds = [a.get("channel", a.get("message")) for a in answers]
    assert kinds == [AUTHENTICATION_FAILURE] * 3 + ["subscriptions", AUTHENTICATION_FAILURE]
    assert server.advanced.auth_failures == 4


async def test_market_trades_rest(sim: SimFactory) -> None:
    async with sim(max_trades=3_000, products=("BTC-USD",)) as server:
        await asyncio.wait_for(server.market_done.wait(), 30)
        path = "/api/v3/brokerage/market/products/BTC-USD/ticker"
        status, _, newest = await http(server, f"{path}?limit=5")
        truth = server.ledger.trades("BTC-USD")
        assert status == 200 and set(newest) == {"trades", "best_bid", "best_ask"}
        assert [int(t["trade_id"]) for t in newest["trades"]] == [
            t.trade_id for t in reversed(truth[-5:])
        ]
        middle = truth[1_500]
        end = to_micros(parse_time(middle.time)) // 1_000_000
        status, _, page = await http(server, f"{path}?limit=1000&end={end}")
        assert status == 200
        times = [to_micros(parse_time(t["time"])) for t in page["trades"]]
        assert times and max(times) < end * 1_000_000
        assert len(page["trades"]) == min(1_000, sum(
            to_micros(parse_time(t.time)) < end * 1_000_000 for t in truth
        ))  # fmt: skip
        assert (await http(server, path))[0] == 400  # limit is required
        assert (await http(server, f"{path}?limit=0"))[0] == 400
        assert (await http(server, f"{path}?limit=1&end=soon"))[0] == 400
        nope = "/api/v3/brokerage/market/products/NOPE-USD/ticker?limit=1"
        assert (await http(server, nope))[0] == 404


async def test_tls_serves_wss_and_https_trusting_the_printed_ca(sim: SimFactory) -> None:
    async with sim(rate=50, speed=1, tls=True) as server:
        assert server.ca_file is not None and server.ca_file.exists()
        assert server.advanced_ws_url.startswith("wss://")
        context = ssl.create_default_context(cafile=str(server.ca_file))
        ws = await _advanced(server, ssl=context)
        await ws.send(_request("market_trades", ["BTC-USD"]))
        assert len(await _trades(ws, 3)) == 3
        await ws.close()
        async with httpx.AsyncClient(verify=context) as client:
            answer = await client.get(server.http_url + "/products")
            assert answer.status_code == 200
        with pytest.raises(ssl.SSLCertVerificationError):  # untrusted without the CA
            await connect(server.advanced_ws_url, ssl=ssl.create_default_context())

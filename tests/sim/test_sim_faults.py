"""Each fault flag, shown by its effect on a client, plus changing faults at runtime over HTTP."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from sim_helpers import SimFactory, feed_client, http, subscribe
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from cryptopipeline.sim import FaultPlan, SimServer

PRODUCT = ["BTC-USD"]


async def _drain(ws: ClientConnection) -> list[bytes | str]:
    """Every frame until the server closes the connection."""
    frames: list[bytes | str] = []
    async with asyncio.timeout(20):
        try:
            while True:
                frames.append(await ws.recv())
        except ConnectionClosed:
            return frames


async def _finish(server: SimServer) -> None:
    """When the market is done, close every connection after its queue is flushed."""
    await server.market_done.wait()
    status, _, body = await http(server, "/sim/disconnect", method="POST")
    assert status == 200 and body["closed"] >= 1


def _tickers(frames: list[bytes | str]) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            continue
        if message["type"] == "ticker":
            out.append(message)
    return out


async def _truth_ids(server: SimServer) -> list[int]:
    _, _, truth = await http(server, "/sim/trades?product_id=BTC-USD")
    return [t["trade_id"] for t in truth]


async def test_drop_makes_gaps_on_the_chosen_connection_only(sim: SimFactory) -> None:
    faults = FaultPlan(drop_rate=0.2, connections=(0,))
    async with (
        sim(products=PRODUCT, max_trades=2000, await_subscribers=2, faults=faults) as server,
        feed_client(server) as lossy,
        feed_client(server) as clean,
    ):
        await subscribe(lossy, ["ticker"], PRODUCT)
        await subscribe(clean, ["ticker"], PRODUCT)
        lossy_frames, clean_frames, _ = await asyncio.gather(
            _drain(lossy), _drain(clean), _finish(server)
        )
        truth = await _truth_ids(server)
    clean_ids = [m["trade_id"] for m in _tickers(clean_frames)]
    lossy_ids = [m["trade_id"] for m in _tickers(lossy_frames)]
    assert clean_ids == truth and len(truth) == 2000
    assert set(lossy_ids) < set(truth)
    assert 0.7 * 2000 < len(lossy_ids) < 0.9 * 2000
    assert lossy_ids == sorted(lossy_ids)
    assert server.stats.frames_dropped == 2000 - len(lossy_ids)


async def test_drop_is_deterministic_for_a_seed(sim: SimFactory) -> None:
    results = []
    for _ in range(2):
        faults = FaultPlan(drop_rate=0.3)
        async with (
            sim(products=PRODUCT, max_trades=300, await_subscribers=1, faults=faults) as server,
            feed_client(server) as ws,
        ):
            await subscribe(ws, ["ticker"], PRODUCT)
            frames, _ = await asyncio.gather(_drain(ws), _finish(server))
            results.append([m["trade_id"] for m in _tickers(frames)])
    assert results[0] == results[1]


async def test_duplicate_repeats_frames(sim: SimFactory) -> None:
    faults = FaultPlan(duplicate_rate=0.25)
    async with (
        sim(products=PRODUCT, max_trades=800, await_subscribers=1, faults=faults) as server,
        feed_client(server) as ws,
    ):
        await subscribe(ws, ["ticker"], PRODUCT)
        frames, _ = await asyncio.gather(_drain(ws), _finish(server))
        truth = await _truth_ids(server)
    ids = [m["trade_id"] for m in _tickers(frames)]
    assert sorted(set(ids)) == truth
    repeats = len(ids) - len(set(ids))
    assert repeats == server.stats.frames_duplicated and 100 < repeats < 300
    tickers = _tickers(frames)
    for first, second in itertools.pairwise(tickers):
        if first["trade_id"] == second["trade_id"]:
            assert first == second


async def test_malformed_frames_are_not_json(sim: SimFactory) -> None:
    faults = FaultPlan(malformed_rate=0.1)
    async with (
        sim(products=PRODUCT, max_trades=500, await_subscribers=1, faults=faults) as server,
        feed_client(server) as ws,
    ):
        await subscribe(ws, ["ticker"], PRODUCT)
        frames, _ = await asyncio.gather(_drain(ws), _finish(server))
    broken = 0
    for frame in frames:
        try:
            orjson.loads(frame)
        except orjson.JSONDecodeError:
            broken += 1
    assert broken == server.stats.frames_malformed and 20 < broken < 90
    assert len(_tickers(frames)) == 500 - broken


async def test_close_every_messages_closes_and_reconnect_resumes(sim: SimFactory) -> None:
    faults = FaultPlan(close_every_messages=50)
    async with sim(products=PRODUCT, speed=1, rate=500, faults=faults) as server:
        for _ in range(2):
            async with feed_client(server) as ws:
                await subscribe(ws, ["ticker"], PRODUCT)
                frames = await _drain(ws)
                assert len(_tickers(frames)) == 50
                assert ws.close_code == 1000
        assert server.stats.fault_closes == 2


async def test_close_every_seconds(sim: SimFactory) -> None:
    faults = FaultPlan(close_every_seconds=0.3)
    async with sim(products=PRODUCT, speed=1, rate=50, faults=faults) as server:
        loop = asyncio.get_running_loop()
        async with feed_client(server) as ws:
            opened = loop.time()
            await subscribe(ws, ["ticker"], PRODUCT)
            frames = await _drain(ws)
            lived = loop.time() - opened
        assert 0.25 < lived < 2.0, lived
        assert _tickers(frames) and server.stats.fault_closes == 1


async def test_stall_stops_then_resumes_without_loss(sim: SimFactory) -> None:
    faults = FaultPlan(stall_seconds=0.6, stall_every_seconds=0.3)
    async with sim(products=PRODUCT, speed=1, rate=100, faults=faults) as server:
        loop = asyncio.get_running_loop()
        async with feed_client(server) as ws:
            await subscribe(ws, ["ticker"], PRODUCT)
            arrivals: list[tuple[float, int]] = []
            async with asyncio.timeout(10):
                while not arrivals or arrivals[-1][0] - arrivals[0][0] < 1.2:
                    message = orjson.loads(await ws.recv())
                    arrivals.append((loop.time(), message["trade_id"]))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) > 0.4, "the connection went silent"
    ids = [trade_id for _, trade_id in arrivals]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "nothing lost across the stall"
    assert server.stats.fault_stalls >= 1


async def test_write_delay_slows_each_message(sim: SimFactory) -> None:
    faults = FaultPlan(write_delay=0.01)
    async with (
        sim(products=PRODUCT, max_trades=30, await_subscribers=1, faults=faults) as server,
        feed_client(server) as ws,
    ):
        loop = asyncio.get_running_loop()
        await subscribe(ws, ["ticker"], PRODUCT)
        started = loop.time()
        frames, _ = await asyncio.gather(_drain(ws), _finish(server))
        assert loop.time() - started >= 0.3
        assert len(_tickers(frames)) == 30


async def test_faults_change_at_runtime_over_http(sim: SimFactory) -> None:
    async with sim(products=PRODUCT, speed=1, rate=200) as server, feed_client(server) as ws:
        await subscribe(ws, ["ticker"], PRODUCT)
        status, _, plan = await http(server, "/sim/faults")
        assert status == 200 and plan["drop_rate"] == 0 and plan["connections"] is None
        status, _, plan = await http(
            server, "/sim/faults?duplicate_rate=1&connections=0", method="POST"
        )
        assert status == 200 and plan["duplicate_rate"] == 1 and plan["connections"] == [0]
        _, _, current = await http(server, "/sim/faults")
        assert current == plan
        # Every ticker now arrives twice. Tickers sent before the change may still wait in
        # this client's buffer (a loaded machine reads late), so find the first pair, then
        # every ticker after it must come as a pair.
        async with asyncio.timeout(10):
            previous: object = None
            while (current := orjson.loads(await ws.recv())) != previous:
                previous = current
            for _ in range(3):
                first = orjson.loads(await ws.recv())
                assert orjson.loads(await ws.recv()) == first
        status, _, plan = await http(server, "/sim/faults", method="POST")
        assert status == 200 and plan == FaultPlan().model_dump(mode="json")
        for query in ("drop_rate=2", "nonsense=1", "connections=a", "drop_rate=x"):
            status, _, body = await http(server, f"/sim/faults?{query}", method="POST")
            assert status == 400 and body["message"], query
        status, _, _ = await http(server, "/sim/faults", method="DELETE")
        assert status == 405


async def test_disconnect_closes_every_socket(sim: SimFactory) -> None:
    async with (
        sim(products=PRODUCT, speed=1, rate=20) as server,
        feed_client(server) as one,
        feed_client(server) as two,
    ):
        await subscribe(one, ["heartbeat"], PRODUCT)
        await subscribe(two, ["heartbeat"], PRODUCT)
        status, _, body = await http(server, "/sim/disconnect", method="POST")
        assert status == 200 and body == {"closed": 2}
        await asyncio.gather(_drain(one), _drain(two))
        assert one.close_code == two.close_code == 1001
        async with feed_client(server) as again:
            await subscribe(again, ["heartbeat"], PRODUCT)

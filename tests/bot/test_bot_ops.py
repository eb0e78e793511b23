"""The bot's HTTP API over real sockets: what is open, what needs the token, and forged
requests (property tests). No Kafka here: a kill that cannot be recorded answers 503 and
still stops trading in the process (the durable path is tested in test_bot_kafka.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptopipeline.bot import Bot, BotSettings, PaperBroker
from cryptopipeline.bot._settings import BotOpsSettings
from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.ops import OpsRequest

TOKEN = "the-ops-token"


def bot_with(token: str | None) -> Bot:
    settings = BotSettings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        ops=BotOpsSettings(port=0, kill_token=token, record_timeout_s=0.5),  # type: ignore[arg-type]
    )
    return Bot(settings, PaperBroker())


@asynccontextmanager
async def serving(bot: Bot) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        bot.ops_server() as ops,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as http,
    ):
        yield http


@pytest.mark.parametrize("token", [None, ""])
async def test_without_a_token_the_guarded_routes_are_disabled(token: str | None) -> None:
    """`CRYPTOPIPELINE_OPS__KILL_TOKEN=` used to make /api/kill answer 200 to anyone."""
    bot = bot_with(token)
    async with serving(bot) as http:
        for method, path in [("POST", "/api/kill"), ("POST", "/api/release")]:
            for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
                answer = await http.request(method, path, headers=headers)
                assert answer.status_code == 403, (path, headers)
                assert "disabled" in answer.json()["error"]
        # bound to loopback (the local run), the portfolio view is open without a token
        assert (await http.get("/api/portfolio")).json()["kill_switch"] is False
        assert (await http.get("/readyz")).status_code == 503  # open, and honest: not ready
        assert (await http.get("/healthz")).status_code == 200
        assert "cryptopipeline_bot_kill_switch" in (await http.get("/metrics")).text
    assert bot.risk.killed is False


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "bot.example"])
async def test_off_loopback_without_a_token_the_portfolio_is_refused(host: str) -> None:
    """On Kubernetes the ops port listens on every interface: positions stay private."""
    settings = BotSettings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        ops=BotOpsSettings(host=host, kill_token=""),  # type: ignore[arg-type]
    )
    bot = Bot(settings, PaperBroker())
    status, body = bot.portfolio_route(OpsRequest("GET", "/api/portfolio", {}, b""))
    assert status == 403 and "disabled" in body["error"]
    for local in ("127.0.0.1", "::1", "localhost"):
        bot.settings.ops.host = local
        assert bot.portfolio_route(OpsRequest("GET", "/api/portfolio", {}, b""))[0] == 200
    await bot.order_log.stop()


async def test_with_a_token_the_guarded_routes_need_it() -> None:
    bot = bot_with(TOKEN)
    async with serving(bot) as http:
        for headers in ({}, {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
            assert (await http.get("/api/portfolio", headers=headers)).status_code == 401
            assert (await http.post("/api/kill", headers=headers)).status_code == 401
        assert bot.risk.killed is False
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/api/portfolio", headers=auth)).json()["kill_switch"] is False
        killed = await http.post("/api/kill", headers=auth)  # no Kafka: cannot be recorded
        assert killed.status_code == 503 and killed.json()["durable"] is False
        assert bot.risk.killed is True  # ... but trading stopped at once all the same
        released = await http.post("/api/release", headers=auth)  # not recorded: stays killed
        assert released.status_code == 503 and bot.risk.killed is True
    await bot.order_log.stop()


# ---- property tests: forged requests ---------------------------------------------------------


def dump(value: object) -> bytes:
    return json.dumps(value).encode()


header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.just(f"Bearer {TOKEN[:-1]}"), st.just(f"bearer {TOKEN}"), st.just(f"Bearer  {TOKEN} x"),
    st.sampled_from(["-1", "99999999999999999999", "0x10", "NaN", "", " 5"]),
    st.text(alphabet="abc", min_size=5000, max_size=70000),
)  # fmt: skip
bodies = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=10),
                           st.sampled_from(["sNaN", "NaN", "Infinity"])),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                     st.text(max_size=5), inner, max_size=3), max_leaves=20).map(dump),
    st.just(b"[" * 10_000 + b"]" * 10_000),
)  # fmt: skip


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(15):
            return await reader.read()
    except ConnectionError:  # the server may close before it read what it will not read
        return b""
    finally:
        writer.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "G\x00T", ""]),
    path=st.sampled_from(["/api/kill", "/api/release", "/api/portfolio", "/api/kill?x=1",
                          "/metrics", "/../api/kill", "/" + "a" * 3000, "*"]),
    headers=st.lists(st.tuples(st.sampled_from(["Authorization", "Content-Length", "X-A",
                                                "authorization"]), header_values), max_size=4),
    body=bodies,
)  # fmt: skip
def test_property_forged_requests_never_kill_without_the_token(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    async def scenario() -> None:
        bot = bot_with(TOKEN)
        async with bot.ops_server() as ops:
            lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
            lines += [f"{name}: {value}" for name, value in headers]
            answer = await raw_request(ops.port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            if answer:
                status = answer.split(b"\r\n", 1)[0]
                assert status.startswith(b"HTTP/1.1 "), answer[:100]
                assert b" 500 " not in status + b" "
            assert bot.risk.killed is False
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as http:
                assert (await http.get("/healthz")).status_code == 200  # still serving

    asyncio.run(scenario())


async def test_too_many_headers_or_a_huge_body_get_a_clear_status() -> None:
    bot = bot_with(TOKEN)
    async with bot.ops_server() as ops:
        many = "".join(f"X-{n}: y\r\n" for n in range(200))
        answer = await raw_request(ops.port, f"GET /healthz HTTP/1.1\r\n{many}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 431 ")
        big = b"POST /api/kill HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n"
        assert (await raw_request(ops.port, big)).startswith(b"HTTP/1.1 413 ")
        bad = b"POST /api/kill HTTP/1.1\r\nContent-Length: -5\r\n\r\n"
        assert (await raw_request(ops.port, bad)).startswith(b"HTTP/1.1 400 ")
    assert bot.risk.killed is False

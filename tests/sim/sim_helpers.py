"""Helpers for simulator tests: recordings, a tiny HTTP client and a feed client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from cryptopipeline.sim import SimServer

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coinbase"
START = "2026-01-01T00:00:00Z"


def recording(name: str) -> Path:
    """A recorded Coinbase file from ../shared/data/coinbase, or skip the test."""
    path = RECORDINGS / name
    if not path.exists():
        pytest.skip(f"recorded Coinbase data not found at {path} (see its SOURCES.md)")
    return path


def recorded_messages(name: str) -> list[dict[str, Any]]:
    messages = []
    for line in recording(name).read_bytes().splitlines():
        if line.strip():
            raw = orjson.loads(line)
            messages.append(raw["msg"] if "recv_ts" in raw and "msg" in raw else raw)
    return messages


SimFactory = Callable[..., AbstractAsyncContextManager[SimServer]]


async def http(
    server: SimServer, path: str, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    """One HTTP/1.1 request; returns status (0 if closed unanswered), headers, JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        async with asyncio.timeout(10):
            raw = await reader.read()
    finally:
        writer.close()
    if not raw:
        return 0, {}, None  # closed without answering
    header_blob, _, payload = raw.partition(b"\r\n\r\n")
    lines = header_blob.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, orjson.loads(payload) if payload else None


@asynccontextmanager
async def feed_client(server: SimServer, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("max_queue", None)
    async with connect(server.ws_url, compression=None, **kwargs) as ws:
        yield ws


async def subscribe(
    ws: ClientConnection, channels: list[Any], product_ids: list[str] | None = None
) -> dict[str, Any]:
    """Send a subscribe and return the `subscriptions` reply."""
    request: dict[str, Any] = {"type": "subscribe", "channels": channels}
    if product_ids is not None:
        request["product_ids"] = product_ids
    await ws.send(orjson.dumps(request).decode())
    reply: dict[str, Any] = await receive(ws)
    assert reply["type"] == "subscriptions", reply
    return reply


async def receive(ws: ClientConnection, within: float = 10) -> Any:
    async with asyncio.timeout(within):
        return orjson.loads(await ws.recv())


async def collect_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], within: float = 20
) -> list[dict[str, Any]]:
    """Receive messages until `done(message)` is true (inclusive)."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            message = orjson.loads(await ws.recv())
            messages.append(message)
            if done(message):
                return messages

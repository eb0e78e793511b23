"""The feed's WebSocket client (ingestor/_socket.py) against a real websockets server on
127.0.0.1: batches, fragments, limits, closes and backpressure behave as the ingestor needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from cryptopipeline.ingestor._socket import FeedSocket

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def _connected(
    handler: Handler, *, max_size: int = 1 << 20, max_queue: int = 64
) -> AsyncIterator[FeedSocket]:
    """A websockets server running `handler`, and a FeedSocket connected to it."""
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/"
        async with await FeedSocket.connect(url, max_size=max_size, max_queue=max_queue) as socket:
            yield socket


async def _drain(socket: FeedSocket) -> tuple[list[str | bytes], ConnectionClosed]:
    received: list[str | bytes] = []
    while True:
        try:
            received.extend(await socket.receive())
        except ConnectionClosed as closed:
            return received, closed


async def test_every_message_arrives_in_order_then_the_close() -> None:
    async def handler(ws: ServerConnection) -> None:
        assert await ws.recv() == "subscribe"
        for i in range(5_000):
            await ws.send(f'{{"n":{i}}}')
        await ws.send(b"\x00\x01")
        await ws.close(1000, "done")

    async with _connected(handler) as socket:
        await socket.send_text("subscribe")
        received, closed = await _drain(socket)
    assert received[:-1] == [f'{{"n":{i}}}' for i in range(5_000)]
    assert received[-1] == b"\x00\x01"
    assert closed.rcvd is not None and closed.rcvd.code == 1000


async def test_a_fragmented_message_is_joined() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(["part one, ", "part two"])  # an iterable: sent as fragments
        await ws.close()

    async with _connected(handler) as socket:
        await socket.send_text("go")
        received, _ = await _drain(socket)
    assert received == ["part one, part two"]


async def test_a_message_over_max_size_closes_with_1009_as_sent() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("small")
        await ws.send("x" * 5_000)
        await ws.send("never read")
        await ws.wait_closed()  # the client drops the connection; it does not wait for us

    async with _connected(handler, max_size=1_000) as socket:
        await socket.send_text("go")
        received, closed = await _drain(socket)
    assert received == ["small"]
    assert closed.sent is not None and closed.sent.code == 1009


async def test_invalid_utf8_in_a_text_message_closes_with_1007() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("fine")
        ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe bad"))
        ws.send_data()
        await ws.wait_closed()

    async with _connected(handler) as socket:
        await socket.send_text("go")
        received, closed = await _drain(socket)
    assert received == ["fine"]
    assert closed.sent is not None and closed.sent.code == 1007


async def test_a_dropped_tcp_connection_raises_connection_closed() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("one")
        ws.transport.abort()

    async with _connected(handler) as socket:
        await socket.send_text("go")
        received, closed = await _drain(socket)
    assert received == ["one"]
    assert closed.rcvd is None


async def test_reading_pauses_while_the_reader_is_behind_and_nothing_is_lost() -> None:
    sent = 3_000

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        for i in range(sent):
            await ws.send(str(i))
        await ws.close()

    async with _connected(handler, max_queue=16) as socket:
        await socket.send_text("go")
        received: list[str | bytes] = []
        largest = 0
        while True:
            try:
                batch = await socket.receive()
            except ConnectionClosed:
                break
            largest = max(largest, len(batch))
            received.extend(batch)
            await asyncio.sleep(0.001)  # a slow reader
    assert received == [str(i) for i in range(sent)]
    # a paused transport stops adding messages, give or take one read's worth
    assert largest < sent


async def test_a_refused_handshake_and_a_bad_url_raise() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close()

    async def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(403, "no\n")

    async with serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(InvalidHandshake):
            await FeedSocket.connect(f"ws://127.0.0.1:{port}/", max_size=1 << 20)
    with pytest.raises(InvalidURI):
        await FeedSocket.connect("http://127.0.0.1:1/", max_size=1 << 20)

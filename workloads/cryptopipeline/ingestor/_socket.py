"""The feed's WebSocket client: websockets' Sans-I/O protocol under an asyncio Protocol,
handing the reader every message a read from the socket brought, as one batch.

Why not `websockets.connect`: its connection wakes the reading task once per message
through an assembler and a future. The feed is thousands of small messages a second on each
of two sockets, and that per-message hand-over cost the ingestor about a sixth of its CPU
(docs/profiles/, docs/benchmarks.md "Ingestor throughput"). Here the bytes of one
`data_received` are parsed at once and the reader takes all the messages they held in one
wake-up. The WebSocket protocol itself (handshake, framing, limits, close codes, answering
pings) is still websockets' own: only the asyncio hand-over is ours.

Behaviour the ingestor relies on, as with `websockets.connect`:
- a message over `max_size` closes the connection with code 1009 and raises
  `ConnectionClosed` whose `sent.code` is 1009;
- the server closing, or the TCP connection dropping, raises `ConnectionClosed`;
- a failed handshake raises `InvalidHandshake`, a bad URL `InvalidURI`, a refused
  connection `OSError`;
- reading stops (TCP backpressure) while `max_queue` messages wait unread.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Final

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_CLOSE_TIMEOUT_S: Final = 2.0
"""How long `close()` waits for the peer's Close before dropping the connection."""


class FeedSocket(asyncio.Protocol):
    """One client connection. Use `await FeedSocket.connect(...)`, then `receive()`."""

    def __init__(self, protocol: ClientProtocol, max_queue: int) -> None:
        self._protocol = protocol
        self._max_queue = max_queue
        self._transport: asyncio.Transport | None = None
        self._messages: deque[str | bytes] = deque()
        self._partial: list[bytes] = []
        self._partial_text = False
        self._wakeup: asyncio.Future[None] | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed: ConnectionClosed | None = None
        self._paused = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        max_size: int,
        max_queue: int = 64,
        open_timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
    ) -> FeedSocket:
        """Open the TCP (TLS for wss://) connection and complete the WebSocket handshake."""
        uri = parse_uri(url)  # InvalidURI for a bad address
        protocol = ClientProtocol(uri, max_size=max_size)
        loop = asyncio.get_running_loop()
        context = ssl_context
        if uri.secure and context is None:
            context = ssl.create_default_context()
        async with asyncio.timeout(open_timeout):
            _, socket = await loop.create_connection(
                lambda: cls(protocol, max_queue),
                uri.host,
                uri.port,
                ssl=context if uri.secure else None,
                server_hostname=uri.host if uri.secure else None,
            )
            try:
                await socket._opened
            except BaseException:
                socket.abort()
                raise
        return socket

    # ---- the reader's side -----------------------------------------------------------------

    async def receive(self) -> list[str | bytes]:
        """Every message received so far (at least one): waits while there is none.

        Raises `ConnectionClosed` once the connection is closed and every message that
        arrived before the close has been handed over.
        """
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        batch = list(self._messages)
        self._messages.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return batch

    async def send_text(self, text: str) -> None:
        if self._closed is not None:
            raise self._closed
        self._protocol.send_text(text.encode())
        self._flush()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        """Start the closing handshake and wait for the peer, then drop the connection."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1000)
            self._flush()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    while self._closed is None:
                        self._wakeup = asyncio.get_running_loop().create_future()
                        await self._wakeup
            except TimeoutError:
                pass
            finally:
                transport.abort()

    async def __aenter__(self) -> FeedSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._protocol.send_request(self._protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        protocol.receive_data(data)
        messages = self._messages
        for event in protocol.events_received():
            if type(event) is Frame:
                self._frame(event, messages)
            elif isinstance(event, Response):
                self._handshake_done()
        self._flush()
        if protocol.state is State.CLOSED or protocol.close_expected():
            self._close_from_protocol()
        if messages:
            self._wake()
            if len(messages) >= self._max_queue and not self._paused and self._transport:
                self._paused = True
                self._transport.pause_reading()

    def _frame(self, frame: Frame, messages: deque[str | bytes]) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._message(bytes(frame.data), opcode is _TEXT, messages)
            else:
                self._partial = [bytes(frame.data)]
                self._partial_text = opcode is _TEXT
        elif opcode is _CONT:
            self._partial.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._partial)
                self._partial = []
                self._message(data, self._partial_text, messages)
        # ping, pong and close: the Sans-I/O protocol answers them itself

    def _message(self, data: bytes, text: bool, messages: deque[str | bytes]) -> None:
        if not text:
            messages.append(data)
            return
        try:
            messages.append(data.decode())
        except UnicodeDecodeError:  # as websockets does: close with 1007, invalid data
            self._protocol.fail(1007, "invalid UTF-8 in a text message")

    def _handshake_done(self) -> None:
        if self._opened.done():
            return
        error = self._protocol.handshake_exc
        if error is not None:
            self._opened.set_exception(error)
        else:
            self._opened.set_result(None)

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush()
        self._close_from_protocol()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(
                exc or InvalidHandshake("connection closed during the opening handshake")
            )
        if self._protocol.state is not State.CLOSED:
            self._protocol.receive_eof()
        self._close_from_protocol()
        self._transport = None

    def _close_from_protocol(self) -> None:
        """Once a Close frame went either way (or the TCP connection ended), the reader gets
        `ConnectionClosed` after the messages that came before it."""
        protocol = self._protocol
        if self._closed is None and (
            protocol.state is State.CLOSED
            or protocol.close_sent is not None
            or protocol.close_rcvd is not None
        ):
            if protocol.state is State.CLOSED:
                self._closed = protocol.close_exc
            else:  # CLOSING: the same exception websockets raises once the TCP side is done
                self._closed = ConnectionClosedError(
                    protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent
                )
        if self._closed is not None:
            if not self._opened.done():
                self._opened.set_exception(self._closed)
            self._wake()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for data in self._protocol.data_to_send():
            if data:
                transport.write(data)
            elif not transport.is_closing() and transport.can_write_eof():
                transport.write_eof()  # the protocol asks for a half-close after Close

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

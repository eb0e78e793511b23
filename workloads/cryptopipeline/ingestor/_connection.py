"""One WebSocket connection to the feed, kept alive forever: subscribe, read, detect death
by missing heartbeats, reconnect with jittered exponential backoff. Parsing lives elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import deque
from typing import Any, Protocol

import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cryptopipeline.ingestor._decode import (
    ControlFrame,
    FeedFrame,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TimeWindow,
    TradeFrame,
    decode,
)
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._settings import ExchangeSettings, IngestSettings
from cryptopipeline.ingestor._socket import FeedSocket

log = logging.getLogger(__name__)

_HEARTBEAT = "heartbeat"
_MAX_QUEUE = 256
"""Messages waiting unread before the socket stops reading (TCP backpressure)."""
_FEED_PREFIXES = tuple(
    f'{{"type":"{kind}"' for kind in ("ticker", "heartbeat", "match", "last_match")
)


class FrameSink(Protocol):
    """Where decoded frames go. `accept` never waits; `full` says the reader must pause."""

    def accept(self, frame: FeedFrame, connection: int, receive_ns: int) -> None: ...

    @property
    def full(self) -> bool: ...

    async def room(self) -> None: ...


class Backoff:
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**n))."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 30)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


class RecentFrames:
    """The last `size` feed frames any connection delivered. Redundant sockets carry the
    same frames byte for byte, so the second copy of a ticker, match or heartbeat is dropped
    here, before it costs a decode (the sequencer still guards exactly-once; this only saves
    work). Anything else, truncated frames included, always goes on to be decoded and, if
    bad, dead-lettered. A complete but invalid frame arriving on both sockets is one exchange
    message and is dead-lettered once."""

    def __init__(self, size: int = 8_192) -> None:
        self._order: deque[str] = deque()
        self._seen: set[str] = set()
        self._size = size

    def first_time(self, frame: str | bytes) -> bool:
        if (
            not isinstance(frame, str)
            or not frame.startswith(_FEED_PREFIXES)
            or not frame.endswith("}")  # a truncated frame is garbage: report every one
        ):
            return True
        if frame in self._seen:
            return False
        self._seen.add(frame)
        self._order.append(frame)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        return True


class FeedConnection:
    """Connection `conn_id` of the redundant set; `run()` returns only when cancelled."""

    def __init__(
        self,
        conn_id: int,
        exchange: ExchangeSettings,
        ingest: IngestSettings,
        sink: FrameSink,
        metrics: IngestorMetrics,
        recent: RecentFrames | None = None,
    ) -> None:
        self.conn_id = conn_id
        self._exchange = exchange
        self._ingest = ingest
        self._sink = sink
        self._metrics = metrics
        self._recent = recent or RecentFrames()
        self._products = frozenset(exchange.products)
        self._label = str(conn_id)
        self.subscribed = False
        self.connects = 0

    def subscribe_requests(self) -> list[bytes]:
        """What is sent right after connecting (Advanced Trade takes one per channel)."""
        return [self.subscribe_request()]

    def _tls(self) -> ssl.SSLContext | None:
        """For wss:// with `ca_file`: a context trusting it (otherwise the system's CAs)."""
        url, ca_file = self._exchange.ws_url, self._exchange.ca_file
        if ca_file and url.startswith("wss://"):
            return ssl.create_default_context(cafile=ca_file)
        return None

    def subscribe_request(self) -> bytes:
        return orjson.dumps(
            {
                "type": "subscribe",
                "product_ids": self._exchange.products,
                "channels": self._exchange.channels,
            }
        )

    async def run(self) -> None:
        backoff = Backoff(self._ingest.reconnect_initial_s, self._ingest.reconnect_max_s)
        while True:
            reason = await self._session(backoff)
            self.subscribed = False
            self._metrics.connected.labels(self._label).set(0)
            self._metrics.reconnects.labels(self._label, reason).inc()
            delay = backoff.next_delay()
            log.info(
                "connection lost; reconnecting",
                extra={"connection": self.conn_id, "reason": reason, "delay_s": round(delay, 3)},
            )
            await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> str:
        """Connect and read until the connection dies; return why it died."""
        try:
            async with await FeedSocket.connect(
                self._exchange.ws_url,
                open_timeout=10,
                max_size=self._ingest.max_frame_bytes,  # one limit: the setting is the limit
                max_queue=_MAX_QUEUE,
                ssl_context=self._tls(),
            ) as ws:
                self.connects += 1
                for request in self.subscribe_requests():
                    await ws.send_text(request.decode())
                return await self._read(ws, backoff)
        except InvalidURI as exc:
            raise SystemExit(f"invalid exchange URL: {exc}") from exc
        except TimeoutError:
            return "heartbeat_timeout"
        except ConnectionClosed as exc:
            too_big = exc.sent is not None and exc.sent.code == 1009  # we refused a huge frame
            if too_big:
                limit = self._ingest.max_frame_bytes
                self._sink.accept(
                    RejectedFrame(
                        Reject.OVERSIZED,
                        f"a frame over {limit} bytes (max_frame_bytes) was refused by the "
                        "WebSocket layer; the connection was reset and its gap is backfilled",
                        b"",
                    ),
                    self.conn_id,
                    time.time_ns(),
                )
                return "frame_too_big"
            return "closed"
        except (OSError, InvalidHandshake) as exc:
            log.warning("cannot connect", extra={"connection": self.conn_id, "error": str(exc)})
            return "connect_failed"

    async def _read(self, ws: FeedSocket, backoff: Backoff) -> str:
        timeout = self._ingest.heartbeat_timeout_s
        max_bytes = self._ingest.max_frame_bytes
        window = time_window(self._ingest)
        sink, products, recent = self._sink, self._products, self._recent
        counters = _KindCounters(self._metrics, self._label)
        clock = asyncio.get_running_loop().time
        # One deadline for the whole session, pushed on by each heartbeat: entering a fresh
        # timeout per frame cost an eighth of the ingestor's CPU.
        async with asyncio.timeout(timeout) as liveness:
            while True:
                for frame in await ws.receive():
                    if not recent.first_time(frame):
                        counters.repeated()
                        if _HEARTBEAT in frame[:20]:  # another socket's copy proves life too
                            liveness.reschedule(clock() + timeout)
                        continue
                    receive_ns = time.time_ns()
                    decoded = decode(frame, products, max_bytes, receive_ns // 1000, window)
                    counters.count(decoded)
                    if isinstance(decoded, HeartbeatFrame):
                        liveness.reschedule(clock() + timeout)
                        backoff.reset()  # data flows again: the next loss starts short
                    elif isinstance(decoded, ControlFrame) and decoded.type == "subscriptions":
                        self.subscribed = True
                        self._metrics.connected.labels(self._label).set(1)
                    sink.accept(decoded, self.conn_id, receive_ns)
                    if sink.full:  # backpressure: stop reading, not counted as silence
                        liveness.reschedule(None)
                        await sink.room()
                        liveness.reschedule(clock() + timeout)


def time_window(ingest: IngestSettings) -> TimeWindow:
    """The event times the edge accepts, from the settings (docs/ingestor.md, "Event time")."""
    age = ingest.max_event_age_s
    return TimeWindow(
        max_future_us=int(ingest.max_future_s * 1_000_000),
        max_age_us=None if age is None else int(age * 1_000_000),
    )


class _KindCounters:
    """`messages_received_total` children, looked up once per session, not per frame."""

    def __init__(self, metrics: IngestorMetrics, label: str) -> None:
        self._family = metrics.messages_received
        self._label = label
        self._children: dict[str, Any] = {}

    def repeated(self) -> None:
        child = self._children.get("repeated")
        if child is None:
            child = self._children["repeated"] = self._family.labels(self._label, "repeated")
        child.inc()

    def count(self, frame: FeedFrame) -> None:
        kind = frame_kind(frame)
        child = self._children.get(kind)
        if child is None:
            child = self._children[kind] = self._family.labels(self._label, kind)
        child.inc()


def frame_kind(frame: FeedFrame) -> str:
    """A metric label for a decoded frame: its type, or `rejected`."""
    if isinstance(frame, TradeFrame):
        return frame.family.value
    if isinstance(frame, HeartbeatFrame):
        return "heartbeat"
    if isinstance(frame, ControlFrame):
        return frame.type
    return "rejected"

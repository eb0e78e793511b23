"""The operations endpoints every workload serves: /healthz, /readyz and /metrics.

A deliberately tiny HTTP/1.1 server on asyncio streams: Kubernetes probes and Prometheus
scrapes are all it answers, so it needs no web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, dict[str, Any]]]


class OpsServer:
    """Serves probes and metrics until closed; `port=0` picks a free port (see `.port`)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        live: Probe,
        ready: Probe,
        host: str = "0.0.0.0",  # probes come from the kubelet, not localhost
        port: int = 9000,
    ) -> None:
        self._registry = registry
        self._probes = {"/healthz": live, "/readyz": ready}
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request_line.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            status, content_type, body = self._answer(method, path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry)
        probe = self._probes.get(path)
        if probe is None:
            return "404 Not Found", "text/plain", b"not found\n"
        try:
            ok, detail = probe()
        except Exception as exc:  # a probe bug must answer 503, not kill the server
            log.exception("probe failed", extra={"path": path})
            ok, detail = False, {"error": str(exc)}
        body = orjson.dumps({"ok": ok, **detail}, default=str)
        return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body

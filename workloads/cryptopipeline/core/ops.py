"""The operations endpoints every workload serves: /healthz, /readyz and /metrics.

A deliberately tiny HTTP/1.1 server on asyncio streams: Kubernetes probes and Prometheus
scrapes are what it answers, so it needs no web framework. A workload may add a few JSON
routes of its own (`routes`, e.g. the bot's /api/portfolio and /api/kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, dict[str, Any]]]

_MAX_BODY = 64 * 1024
_MAX_HEADERS = 100


class _BadRequest(Exception):
    """A request this server will not read further: answered with `status` and the reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class OpsRequest:
    """What an extra route sees: method, path, headers (lower-case names) and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[OpsRequest], tuple[int, Any] | Awaitable[tuple[int, Any]]]
"""An extra route: answers (HTTP status, JSON-serialisable body), directly or awaited (a
route that must make something durable before it answers)."""


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
        routes: Mapping[tuple[str, str], Route] | None = None,
    ) -> None:
        self._registry = registry
        self._routes = dict(routes or {})
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
            try:
                async with asyncio.timeout(10):
                    method, path, headers, body = await self._read_request(reader)
            except _BadRequest as exc:
                status, content_type, payload = exc.status, "text/plain", f"{exc}\n".encode()
            else:
                route = self._routes.get((method, path))
                if route is not None:
                    status, content_type, payload = await self._route(
                        route, OpsRequest(method, path, headers, body)
                    )
                else:
                    status, content_type, payload = self._answer(method, path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(
        reader: asyncio.StreamReader,
    ) -> tuple[str, str, dict[str, str], bytes]:
        """Method, path, headers and body, or _BadRequest with the reason (never a crash)."""
        try:
            request_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                if len(headers) >= _MAX_HEADERS:
                    raise _BadRequest("431 Request Header Fields Too Large", "too many headers")
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
        except (ValueError, asyncio.LimitOverrunError):  # a line beyond the reader's limit
            raise _BadRequest("431 Request Header Fields Too Large", "line too long") from None
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest("400 Bad Request", "malformed request line")
        length_text = headers.get("content-length", "0") or "0"
        if not length_text.isdigit() or len(length_text) > 12:
            raise _BadRequest("400 Bad Request", "bad Content-Length")
        length = int(length_text)
        if length > _MAX_BODY:
            raise _BadRequest("413 Content Too Large", f"body above {_MAX_BODY} bytes")
        body = await reader.readexactly(length) if length else b""
        return parts[0], parts[1].split("?")[0], headers, body

    @staticmethod
    async def _route(route: Route, request: OpsRequest) -> tuple[str, str, bytes]:
        try:
            answer = route(request)
            code, payload = await answer if inspect.isawaitable(answer) else answer
        except Exception:  # a route bug must answer 500, not kill the server
            log.exception("route failed", extra={"path": request.path})
            code, payload = 500, {"error": "internal error"}
        phrase = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
                  403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
                  503: "Service Unavailable"}  # fmt: skip
        status = f"{code} {phrase.get(code, 'Status')}"
        return status, "application/json", orjson.dumps(payload, default=str)

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

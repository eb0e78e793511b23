"""A small async client for ksqlDB's REST API, as documented: `/info`, `/ksql`, `/query`,
`/status/<commandId>`.

It remembers the highest `commandSequenceNumber` the server returned and sends it with every
later `/ksql` request, so each statement runs only after the commands before it completed
(the documented way to coordinate dependent requests). Errors carry the server's message and
`error_code`; nothing here ever puts credentials into a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from cryptopipeline.ksql._settings import KsqlSettings

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.ksql.v1+json"
_PENDING = {"QUEUED", "PARSING", "EXECUTING"}


class KsqlError(RuntimeError):
    """Anything that went wrong talking to ksqlDB."""


class KsqlConnectionError(KsqlError):
    """The server could not be reached (refused, DNS, TLS)."""


class KsqlTimeoutError(KsqlError):
    """The server did not answer, or a command did not finish, in time."""


class KsqlServerError(KsqlError):
    """The server answered with an error (HTTP 4xx/5xx, or a command status of ERROR)."""

    def __init__(
        self, message: str, *, status: int, error_code: int | None, statement_text: str = ""
    ) -> None:
        code = f" error_code {error_code}" if error_code is not None else ""
        super().__init__(f"HTTP {status}{code}: {message}")
        self.server_message = message
        self.status = status
        self.error_code = error_code
        self.statement_text = statement_text


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What `/info` says about the server."""

    version: str
    service_id: str
    kafka_cluster_id: str


class KsqlClient:
    """One connection pool to one ksqlDB server. Use as `async with KsqlClient(settings)`."""

    def __init__(
        self, settings: KsqlSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        if not settings.url:
            raise KsqlError("no ksqlDB URL configured (CRYPTOPIPELINE_KSQL__URL or --url)")
        self._settings = settings
        self._where = settings.display_url()
        self._http = httpx.AsyncClient(
            base_url=settings.base_url(),
            auth=settings.credentials(),
            timeout=httpx.Timeout(settings.request_timeout_s),
            headers={"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE},
            transport=transport,
        )
        self.command_sequence_number: int | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def info(self) -> ServerInfo:
        body = await self._request("GET", "/info")
        server = body.get("KsqlServerInfo", {}) if isinstance(body, dict) else {}
        if not isinstance(server, dict) or "ksqlServiceId" not in server:
            raise KsqlError(f"{self._where}/info did not return KsqlServerInfo: {body!r:.200}")
        return ServerInfo(
            version=str(server.get("version", "")),
            service_id=str(server["ksqlServiceId"]),
            kafka_cluster_id=str(server.get("kafkaClusterId", "")),
        )

    async def execute(
        self, sql: str, properties: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Run statements on `/ksql` and wait until every command they queued has finished."""
        payload: dict[str, Any] = {"ksql": sql, "streamsProperties": dict(properties or {})}
        if self.command_sequence_number is not None:
            payload["commandSequenceNumber"] = self.command_sequence_number
        body = await self._request("POST", "/ksql", payload)
        if not isinstance(body, list):
            raise KsqlError(f"/ksql returned {type(body).__name__}, expected a list: {body!r:.200}")
        for entity in body:
            if not isinstance(entity, dict):
                continue
            sequence = entity.get("commandSequenceNumber")
            if isinstance(sequence, int) and sequence >= 0:
                current = self.command_sequence_number
                self.command_sequence_number = (
                    sequence if current is None else max(current, sequence)
                )
            status = entity.get("commandStatus")
            if isinstance(status, dict):
                await self._finish_command(entity, status)
        return body

    async def _finish_command(self, entity: dict[str, Any], status: dict[str, Any]) -> None:
        state = str(status.get("status", ""))
        command_id = str(entity.get("commandId", ""))
        deadline = time.monotonic() + self._settings.command_timeout_s
        delay = 0.05
        while state in _PENDING:
            if time.monotonic() > deadline:
                raise KsqlTimeoutError(
                    f"command {command_id} still {state} after {self._settings.command_timeout_s}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            polled = await self._request("GET", f"/status/{command_id}")
            status = polled if isinstance(polled, dict) else {}
            state = str(status.get("status", ""))
        if state == "ERROR":
            raise KsqlServerError(
                str(status.get("message", "command failed")),
                status=200,
                error_code=None,
                statement_text=str(entity.get("statementText", "")),
            )

    async def pull(self, sql: str) -> list[dict[str, Any]]:
        """Run a pull query on `/query`; rows as dicts keyed by upper-case column name."""
        body = await self._request("POST", "/query", {"ksql": sql, "streamsProperties": {}})
        items = body if isinstance(body, list) else [body]
        columns: list[str] = []
        rows: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if "header" in item:
                columns = parse_schema(str(item["header"].get("schema", "")))
            elif isinstance(item.get("row"), dict):
                values = item["row"].get("columns", [])
                rows.append({name: value for name, value in zip(columns, values, strict=False)})
            elif item.get("errorMessage"):
                message = item["errorMessage"]
                text = message.get("message", message) if isinstance(message, dict) else message
                raise KsqlServerError(str(text), status=200, error_code=None, statement_text=sql)
        return rows

    async def source_names(self) -> set[str]:
        """Names of every stream and table on the server."""
        names: set[str] = set()
        for entity in await self.execute("LIST STREAMS; LIST TABLES;"):
            for key in ("streams", "tables"):
                for source in entity.get(key, []) or []:
                    if isinstance(source, dict) and "name" in source:
                        names.add(str(source["name"]).upper())
        return names

    async def _request(self, method: str, path: str, payload: Any = None) -> Any:
        try:
            response = await self._http.request(
                method, path, content=None if payload is None else json.dumps(payload)
            )
        except httpx.TimeoutException:
            raise KsqlTimeoutError(
                f"{method} {self._where}{path}: no answer within "
                f"{self._settings.request_timeout_s}s"
            ) from None
        except httpx.HTTPError as exc:
            raise KsqlConnectionError(
                f"{method} {self._where}{path}: {type(exc).__name__}: {exc}"
            ) from None
        body = _decode(response.text)
        if response.status_code >= 400:
            message = response.reason_phrase
            code = None
            statement = ""
            if isinstance(body, dict):
                message = str(body.get("message", message))
                code = body.get("error_code") if isinstance(body.get("error_code"), int) else None
                statement = str(body.get("statementText", ""))
            if response.status_code == 401:
                message = "unauthorized: check the configured username and password"
            raise KsqlServerError(
                message, status=response.status_code, error_code=code, statement_text=statement
            )
        return body


_SCHEMA_COLUMN = re.compile(r"`((?:[^`]|``)+)`")


def parse_schema(schema: str) -> list[str]:
    """Column names from a `/query` header schema such as "`VERSION` STRING, `NAME` STRING"."""
    return [name.replace("``", "`").upper() for name in _top_level_columns(schema)]


def _top_level_columns(schema: str) -> list[str]:
    names: list[str] = []
    depth = 0
    expect_name = True
    i = 0
    while i < len(schema):
        char = schema[i]
        if char == "`":
            match = _SCHEMA_COLUMN.match(schema, i)
            if match is None:
                break
            if depth == 0 and expect_name:
                names.append(match[1])
                expect_name = False
            i = match.end()
            continue
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            expect_name = True
        i += 1
    return names


def _decode(text: str) -> Any:
    """JSON body; `/query` may stream one object per line (with trailing commas) instead."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    items = []
    for line in stripped.strip("[]").splitlines():
        line = line.strip().rstrip(",")
        if line:
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                return {"message": stripped[:500]}
    return items

"""A test double of ksqlDB's REST API. It is NOT ksqlDB: it runs no queries and checks SQL
only as far as the runner's tests need.

What it does implement, from ksqlDB's REST documentation: `GET /info`, `POST /ksql` (a list
of result entities; `commandId`, `commandStatus`, `commandSequenceNumber` for CREATE/DROP/
TERMINATE; `statement_error` with `error_code` 40001, `statementText` and `entities` on a
bad statement; `INSERT INTO ... VALUES` answered with an empty list), `GET /status/<id>`,
`POST /query` for pull queries (a JSON array: a `header` with `schema`, then `row.columns`),
and HTTP basic auth. It keeps a catalogue of streams and tables, the rows the runner INSERTs
into a stream, and answers key lookups on a table declared as `GROUP BY` +
`LATEST_BY_OFFSET` over such a stream. It records every request. Faults: fail a statement,
delay a statement past the client's timeout, answer commands as QUEUED first (so the client
polls `/status`), let the table lag behind the stream for a few reads, and answer pull
queries with "not available yet" as a new table does.
It runs as a real HTTP server on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

_NAME = r"([A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
_CREATE = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:SOURCE\s+)?(STREAM|TABLE)\s+(IF\s+NOT\s+EXISTS\s+)?{_NAME}",
    re.IGNORECASE,
)
_FROM = re.compile(rf"\b(?:FROM|JOIN)\s+{_NAME}", re.IGNORECASE)
_TOPIC = re.compile(r"KAFKA_TOPIC\s*=\s*'([^']*)'", re.IGNORECASE)
_INSERT = re.compile(
    rf"^\s*INSERT\s+INTO\s+{_NAME}\s*\(([^)]*)\)\s*VALUES\s*\((.*)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SELECT = re.compile(
    rf"^\s*SELECT\s+(.+?)\s+FROM\s+{_NAME}\s+WHERE\s+([A-Za-z_]+)\s*=\s*'((?:[^']|'')*)'\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_GROUP_BY = re.compile(r"GROUP\s+BY\s+([A-Za-z_]+)", re.IGNORECASE)
_DROP = re.compile(rf"^\s*DROP\s+(STREAM|TABLE)\s+(IF\s+EXISTS\s+)?{_NAME}", re.IGNORECASE)
_LIST = re.compile(r"^\s*(?:LIST|SHOW)\s+(STREAMS|TABLES|QUERIES|TOPICS)\s*;?\s*$", re.IGNORECASE)
_TERMINATE = re.compile(r"^\s*TERMINATE\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_EXISTS = "A source with the same name already exists"
_METADATA_COLUMNS = (
    "VERSION_KEY",
    "VERSION",
    "NAME",
    "STATE",
    "CHECKSUM",
    "STARTED_ON",
    "COMPLETED_ON",
    "PREVIOUS",
    "ERROR_REASON",
)


def _ident(raw: str) -> str:
    return raw[1:-1] if raw.startswith("`") else raw.upper()


def split_sql(sql: str) -> list[str]:
    """Split on semicolons outside single quotes (enough for what the runner sends)."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in sql:
        current.append(char)
        if char == "'":
            quoted = not quoted
        elif char == ";" and not quoted:
            out.append("".join(current).strip())
            current = []
    if "".join(current).strip():
        out.append("".join(current).strip())
    return out


def _values(text: str) -> list[str | None]:
    """Parse a VALUES list of string literals and NULLs."""
    values: list[str | None] = []
    i = 0
    while i < len(text):
        if text[i] == "'":
            j = i + 1
            chunk = []
            while True:
                if text[j] == "'" and j + 1 < len(text) and text[j + 1] == "'":
                    chunk.append("'")
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    chunk.append(text[j])
                    j += 1
            values.append("".join(chunk))
            i = j + 1
        elif text[i : i + 4].upper() == "NULL":
            values.append(None)
            i += 4
        else:
            i += 1
    return values


@dataclass
class Source:
    kind: str  # STREAM or TABLE
    name: str
    topic: str
    statement: str
    query_id: str | None = None
    group_by: str | None = None
    reads_from: str | None = None


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class KsqlDouble:
    """State and faults; `start()` serves it on 127.0.0.1."""

    topics: set[str] = field(default_factory=lambda: {"btc_usd"})
    auth: tuple[str, str] | None = None
    service_id: str = "default_"
    version: str = "0.29.0 (test double, not ksqlDB)"
    async_commands: bool = False
    stale_reads: int = 0
    not_ready_reads: int = 0
    sources: dict[str, Source] = field(default_factory=dict)
    rows: dict[str, list[dict[str, str | None]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    delays: list[tuple[str, float]] = field(default_factory=list)
    sequence: int = -1
    commands: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None
    _lag_pending: int = 0

    # ---- faults ---------------------------------------------------------------------------
    def fail_on(self, fragment: str, message: str) -> None:
        """Answer any statement (but INSERT VALUES) containing `fragment` with a 400 error."""
        self.failures.append((fragment, message))

    def delay_on(self, fragment: str, seconds: float) -> None:
        """Hold the answer to a request with a statement (not INSERT) containing `fragment`."""
        self.delays.append((fragment, seconds))

    def not_ready_for(self, reads: int) -> None:
        """Answer the next `reads` pull queries as a freshly created table does on ksqlDB
        8.3.1: HTTP 400, error_code 40001, "Materialized data ... is not available yet",
        alternating with HTTP 500, error_code 50000 (its state store still opening)."""
        self.not_ready_reads = reads

    def clear_faults(self) -> None:
        self.failures.clear()
        self.delays.clear()

    # ---- views for tests ------------------------------------------------------------------
    def statements(self) -> list[str]:
        """Every statement sent to /ksql, in order."""
        out = []
        for request in self.requests:
            if request.path == "/ksql" and isinstance(request.body, dict):
                out.extend(split_sql(str(request.body.get("ksql", ""))))
        return out

    def table_row(self, table: str, key: str) -> dict[str, str | None] | None:
        with self._lock:
            return self._materialize(self.sources[table.upper()], len(self._stream_rows(table)))[
                0
            ].get(key)

    def _stream_rows(self, table: str) -> list[dict[str, str | None]]:
        source = self.sources[table.upper()]
        return self.rows.get(source.reads_from or "", [])

    # ---- server ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KsqlDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                double._handle(self, "GET")

            def do_POST(self) -> None:
                double._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- protocol ---------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._send(
                handler, 400, {"@type": "generic_error", "error_code": 40000, "message": "bad JSON"}
            )
            return
        authorization = handler.headers.get("Authorization")
        with self._lock:
            self.requests.append(Recorded(method, handler.path, body, authorization))
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if authorization != expected:
                self._send(
                    handler,
                    401,
                    {"@type": "generic_error", "error_code": 40100, "message": "Unauthorized"},
                )
                return
        sql = str(body.get("ksql", "")) if isinstance(body, dict) else handler.path
        statements = [s for s in split_sql(sql) if not s.upper().startswith("INSERT")]
        for fragment, seconds in list(self.delays):
            if any(fragment in statement for statement in statements):
                time.sleep(seconds)
        if method == "GET" and handler.path == "/info":
            self._send(
                handler,
                200,
                {
                    "KsqlServerInfo": {
                        "version": self.version,
                        "kafkaClusterId": "double-cluster",
                        "ksqlServiceId": self.service_id,
                        "serverStatus": "RUNNING",
                    }
                },
            )
        elif method == "GET" and handler.path.startswith("/status/"):
            self._status(handler, unquote(handler.path[len("/status/") :]))
        elif method == "POST" and handler.path == "/ksql" and isinstance(body, dict):
            self._ksql(handler, body)
        elif method == "POST" and handler.path == "/query" and isinstance(body, dict):
            self._query(handler, str(body.get("ksql", "")))
        else:
            self._send(
                handler,
                404,
                {"@type": "generic_error", "error_code": 40400, "message": "not found"},
            )

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/vnd.ksql.v1+json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _status(self, handler: BaseHTTPRequestHandler, command_id: str) -> None:
        with self._lock:
            states = self.commands.get(command_id)
            if states is None:
                self._send(
                    handler,
                    404,
                    {
                        "@type": "generic_error",
                        "error_code": 40400,
                        "message": f"command {command_id} not found",
                    },
                )
                return
            state = states.pop(0) if len(states) > 1 else states[0]
        self._send(
            handler,
            200,
            {
                "status": state,
                "message": "Stream created and running" if state == "SUCCESS" else state.lower(),
            },
        )

    def _error(
        self, handler: BaseHTTPRequestHandler, statement: str, message: str, entities: list[Any]
    ) -> None:
        self._send(
            handler,
            400,
            {
                "@type": "statement_error",
                "error_code": 40001,
                "message": message,
                "statementText": statement,
                "entities": entities,
            },
        )

    def _ksql(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        wanted = body.get("commandSequenceNumber")
        with self._lock:
            if isinstance(wanted, int) and wanted > self.sequence:
                self._send(
                    handler,
                    503,
                    {
                        "@type": "generic_error",
                        "error_code": 50301,
                        "message": f"Timed out waiting for command sequence number {wanted}",
                    },
                )
                return
            entities: list[Any] = []
            for statement in split_sql(str(body.get("ksql", ""))):
                for fragment, message in self.failures:
                    if fragment in statement and not statement.upper().startswith("INSERT"):
                        self._error(handler, statement, message, entities)
                        return
                if "${" in statement:
                    variable = statement[statement.index("${") :].split("}")[0] + "}"
                    self._error(
                        handler, statement, f"line 1:1: Illegal argument: '{variable}'", entities
                    )
                    return
                try:
                    entity = self._execute(statement)
                except ValueError as exc:
                    self._error(handler, statement, str(exc), entities)
                    return
                if entity is not None:
                    entities.append(entity)
        self._send(handler, 200, entities)

    def _command(self, statement: str, command_id: str, message: str) -> dict[str, Any]:
        self.sequence += 1
        states = ["QUEUED", "EXECUTING", "SUCCESS"] if self.async_commands else ["SUCCESS"]
        self.commands[command_id] = list(states)
        status = states[0]
        return {
            "@type": "currentStatus",
            "statementText": statement,
            "commandId": command_id,
            "commandStatus": {
                "status": status,
                "message": message if status == "SUCCESS" else status.lower(),
            },
            "commandSequenceNumber": self.sequence,
            "warnings": [],
        }

    def _execute(self, statement: str) -> dict[str, Any] | None:
        if match := _LIST.match(statement):
            what = match[1].upper()
            if what == "TOPICS":
                return {
                    "@type": "kafka_topics",
                    "statementText": statement,
                    "topics": [{"name": t, "replicaInfo": [1]} for t in sorted(self.topics)],
                    "warnings": [],
                }
            if what == "QUERIES":
                queries = [
                    {"queryString": s.statement, "sinks": [s.name], "id": s.query_id}
                    for s in self.sources.values()
                    if s.query_id
                ]
                return {
                    "@type": "queries",
                    "statementText": statement,
                    "queries": queries,
                    "warnings": [],
                }
            kind = what[:-1]
            listed = [
                {
                    "type": s.kind,
                    "name": s.name,
                    "topic": s.topic,
                    "keyFormat": "KAFKA",
                    "valueFormat": "JSON",
                    "isWindowed": False,
                }
                for s in self.sources.values()
                if s.kind == kind
            ]
            return {
                "@type": what.lower(),
                "statementText": statement,
                what.lower(): listed,
                "warnings": [],
            }
        if match := _CREATE.match(statement):
            return self._create(statement, match[1].upper(), bool(match[2]), _ident(match[3]))
        if match := _INSERT.match(statement):
            name = _ident(match[1])
            source = self.sources.get(name)
            if source is None or source.kind != "STREAM":
                raise ValueError(f"Cannot insert values into an unknown stream: {name}")
            columns = [c.strip().upper() for c in match[2].split(",")]
            values = _values(match[3])
            if len(columns) != len(values):
                raise ValueError("Expected number columns and values to match")
            self.rows.setdefault(name, []).append(dict(zip(columns, values, strict=True)))
            self._lag_pending = self.stale_reads
            return None
        if match := _DROP.match(statement):
            name = _ident(match[3])
            if name not in self.sources:
                if match[2]:
                    return self._command(
                        statement, f"{match[1].lower()}/`{name}`/drop", "Source does not exist."
                    )
                raise ValueError(f"Source {name} does not exist.")
            del self.sources[name]
            return self._command(
                statement, f"{match[1].lower()}/`{name}`/drop", f"Source `{name}` was dropped."
            )
        if match := _TERMINATE.match(statement):
            for source in self.sources.values():
                if source.query_id == match[1]:
                    source.query_id = None
            return self._command(statement, f"terminate/{match[1]}/execute", "Query terminated.")
        raise ValueError(
            f"line 1:1: mismatched input '{statement.split()[0] if statement.split() else ''}'"
        )

    def _create(self, statement: str, kind: str, if_not_exists: bool, name: str) -> dict[str, Any]:
        command_id = f"{kind.lower()}/`{name}`/create"
        if name in self.sources:
            if if_not_exists:
                return self._command(
                    statement,
                    command_id,
                    f"Cannot add {kind.lower()} `{name}`: {_EXISTS}.",
                )
            raise ValueError(f"Cannot add {kind.lower()} '{name}': {_EXISTS}")
        is_query = re.search(r"\bAS\s+SELECT\b", statement, re.IGNORECASE) is not None
        reads = [_ident(m[1]) for m in _FROM.finditer(statement)] if is_query else []
        for read in reads:
            if read not in self.sources:
                raise ValueError(f"{read} does not exist.")
        topic_match = _TOPIC.search(statement)
        topic = topic_match[1] if topic_match else name
        partitions = re.search(r"PARTITIONS\s*=", statement, re.IGNORECASE) is not None
        if not is_query and topic not in self.topics and not partitions:
            raise ValueError(f"Kafka topic does not exist: {topic}")
        self.topics.add(topic)
        source = Source(kind, name, topic, statement)
        message = f"{kind.title()} created"
        if is_query:
            source.query_id = f"C{kind[0]}AS_{name}_{self.sequence + 1}"
            source.reads_from = reads[0] if reads else None
            group = _GROUP_BY.search(statement)
            source.group_by = group[1].upper() if group else None
            message = f"Created query with ID {source.query_id}"
        self.sources[name] = source
        return self._command(statement, command_id, message)

    def _materialize(
        self, table: Source, visible: int
    ) -> tuple[dict[str, dict[str, str | None]], list[str]]:
        rows = self.rows.get(table.reads_from or "", [])[:visible]
        state: dict[str, dict[str, str | None]] = {}
        key = table.group_by or "VERSION_KEY"
        for row in rows:
            current = state.setdefault(str(row.get(key)), {})
            for column, value in row.items():
                if value is not None:  # LATEST_BY_OFFSET ignores NULLs
                    current[column] = value
        return state, list(_METADATA_COLUMNS)

    def _query(self, handler: BaseHTTPRequestHandler, sql: str) -> None:
        with self._lock:
            match = _SELECT.match(sql)
            if match is None:
                self._send(
                    handler,
                    400,
                    {
                        "@type": "statement_error",
                        "error_code": 40001,
                        "message": "the double only answers key lookups",
                        "statementText": sql,
                        "entities": [],
                    },
                )
                return
            if self.not_ready_reads > 0:
                self.not_ready_reads -= 1
                if self.not_ready_reads % 2:  # then, while its store opens: an opaque 500
                    self._send(
                        handler,
                        500,
                        {
                            "@type": "generic_error",
                            "error_code": 50000,
                            "message": "The server encountered an internal error when "
                            "processing the query. Please consult the server logs for more "
                            "information.",
                        },
                    )
                    return
                self._send(
                    handler,
                    400,
                    {
                        "@type": "statement_error",
                        "error_code": 40001,
                        "message": f"Materialized data for key [{match[4]}] is not available "
                        "yet. Please try again later.",
                        "statementText": sql,
                        "entities": [],
                    },
                )
                return
            columns = [c.strip().upper() for c in match[1].split(",")]
            name = _ident(match[2])
            table = self.sources.get(name)
            if table is None or table.kind != "TABLE":
                self._send(
                    handler,
                    400,
                    {
                        "@type": "statement_error",
                        "error_code": 40001,
                        "message": f"{name} does not exist.",
                        "statementText": sql,
                        "entities": [],
                    },
                )
                return
            total = len(self.rows.get(table.reads_from or "", []))
            visible = total
            if self._lag_pending > 0:
                visible = max(0, total - 1)
                self._lag_pending -= 1
            state, _ = self._materialize(table, visible)
            key = match[4].replace("''", "'")
            header = {
                "header": {
                    "queryId": f"query_{int(time.time() * 1000)}",
                    "schema": ", ".join(
                        f"`{c}` STRING KEY" if c == "VERSION_KEY" else f"`{c}` STRING"
                        for c in columns
                    ),
                }
            }
            payload: list[Any] = [header]
            if key in state:
                payload.append({"row": {"columns": [state[key].get(c) for c in columns]}})
        self._send(handler, 200, payload)

"""ksqlDB migrations through the project's runner (`cryptopipeline.ksql.apply_migrations`).

The reconciler talks to a `MigrationRunner`; `KsqlMigrationRunner` adapts the library,
imported only when used, so the operator runs (and reports `RunnerUnavailable`) where the
runner is not installed. `migration_request` reads what a pipeline asks for (its Secret's
credentials, its ConfigMap's files). Credentials are passed in memory, never written anywhere.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptopipeline_operator._kube import Kube
from cryptopipeline_operator._manifests import Pipeline


class MigrationError(RuntimeError):
    """Migrations did not apply; `reason` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MigrationRequest:
    """One run: where ksqlDB is, who we are, which files, which `${...}` values."""

    url: str
    username: str | None
    password: str | None
    files: Mapping[str, str] | None  # file name -> SQL, from a ConfigMap; None: built-in dir
    variables: Mapping[str, str]

    def __repr__(self) -> str:  # never show the password
        return f"MigrationRequest(url={self.url!r}, username={self.username!r}, password=<hidden>)"


class MigrationRunner(Protocol):
    async def apply(self, request: MigrationRequest) -> int | None:
        """Apply pending migrations; return the latest applied version (None: none yet)."""
        ...


@dataclass(frozen=True, slots=True)
class KsqlMigrationRunner:
    """Calls `cryptopipeline.ksql.apply_migrations` with settings built from the request."""

    builtin_dir: Path

    async def apply(self, request: MigrationRequest) -> int | None:
        try:
            ksql: Any = importlib.import_module("cryptopipeline.ksql")
            apply_migrations = ksql.apply_migrations
            settings_class = ksql.KsqlSettings
        except (ImportError, AttributeError) as exc:
            raise MigrationError(
                "RunnerUnavailable", f"the ksqlDB migration runner is not installed ({exc})"
            ) from None
        fields: dict[str, Any] = {"url": request.url}
        if request.username:
            fields["username"] = request.username
            fields["password"] = request.password or ""
        try:
            settings = settings_class(**fields)
        except ValueError as exc:
            raise MigrationError("InvalidKsqlSettings", str(exc).splitlines()[0]) from None
        with tempfile.TemporaryDirectory(prefix="cryptopipeline-migrations-") as tmp:
            folder = self.builtin_dir
            if request.files is not None:
                folder = Path(tmp)
                for name, text in request.files.items():
                    (folder / Path(name).name).write_text(text, encoding="utf-8")
            if not folder.is_dir():
                raise MigrationError("MigrationsNotFound", f"no migrations folder at {folder}")
            try:
                report = await apply_migrations(settings, folder, variables=dict(request.variables))
            except Exception as exc:  # the runner's errors say what and where
                message = f"{type(exc).__name__}: {exc}"[:1000]
                raise MigrationError("MigrationFailed", message) from None
        version = report.current_version
        return None if version is None else int(version)


async def migration_request(kube: Kube, pipeline: Pipeline) -> MigrationRequest:
    """The run a pipeline asks for: its ksqlDB, credentials from its Secret, files from its
    ConfigMap (none: the built-in ksqldb/), and its raw topic for `${raw_topic}`."""
    ksql = pipeline.spec.ksqldb
    assert ksql is not None
    username = password = None
    if ksql.credentials_secret is not None:
        ref = ksql.credentials_secret
        username = await kube.secret_value(pipeline.namespace, ref.name, ref.username_key)
        password = await kube.secret_value(pipeline.namespace, ref.name, ref.password_key)
    files = None
    if ksql.migrations.config_map:
        found = await kube.get("v1", "ConfigMap", pipeline.namespace, ksql.migrations.config_map)
        files = dict((found or {}).get("data") or {})
    names = pipeline.spec.kafka.topics.names
    return MigrationRequest(
        url=ksql.url,
        username=username,
        password=password,
        files=files,
        variables={"raw_topic": names.raw},
    )

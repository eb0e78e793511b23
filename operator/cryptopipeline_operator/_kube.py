"""The thin Kubernetes layer: server-side apply, get, list, delete and status patches.

Built on the official client's `ApiClient` (its configuration handles kubeconfig and
in-cluster credentials) and run in worker threads, so handlers stay async. Objects are
plain dicts; the REST path comes from a fixed table of the kinds the operator touches.
Secrets are only ever looked at for which keys exist: their values never leave here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import urllib3
from kubernetes import client, config

FIELD_MANAGER: Final = "cryptopipeline-operator"

#: (apiVersion, kind) -> plural, for every kind the operator reads or writes.
PLURALS: Final[dict[tuple[str, str], str]] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Secret"): "secrets",
    ("apps/v1", "Deployment"): "deployments",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopics",
    ("cryptopipeline.io/v1alpha1", "CryptoPipeline"): "cryptopipelines",
}


class KubeError(RuntimeError):
    """An API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def load_config() -> client.ApiClient:
    """An API client from the in-cluster ServiceAccount, else from the kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # The client reads $KUBECONFIG once, at import; read it now instead.
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = API_CONCURRENCY
    return client.ApiClient(configuration)


def _path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    plural = PLURALS[(api_version, kind)]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


def _reason(data: bytes) -> str:
    """The API server's message from a failure body (a Status object), shortened."""
    try:
        return str(json.loads(data).get("message", ""))[:500]
    except (ValueError, AttributeError):
        return data[:300].decode(errors="replace")


# API calls in flight at once. The client is synchronous, so each call holds a thread; the
# default executor's min(32, cores + 4) threads made 200 pipelines' drift rounds queue a new
# pipeline's first apply for 25 s on two cores (tests/benchmarks/test_operator_scale.py).
API_CONCURRENCY = 32


class Kube:
    """Async calls against one API server; every method raises `KubeError` on failure."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._threads = ThreadPoolExecutor(API_CONCURRENCY, thread_name_prefix="kube")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        payload = body  # the client serialises JSON (and JSON-as-YAML for apply)

        def call() -> tuple[int, bytes]:
            method_, url, all_headers, body_, post = self._api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(method_, url, all_headers, body_, post)
            response.read()  # type: ignore[no-untyped-call]
            return int(response.status), bytes(response.data or b"")

        try:
            status, data = await asyncio.get_running_loop().run_in_executor(self._threads, call)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, TLS, DNS
            raise KubeError(f"{method} {path}: {exc}") from None
        if not 200 <= status < 300:
            raise KubeError(f"{method} {path}: {status} {_reason(data)}", status)
        return json.loads(data) if data else {}

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply (forced, one field manager): a no-op when nothing differs."""
        meta = manifest["metadata"]
        path = _path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        result: dict[str, Any] = await self._call(
            "PATCH",
            path,
            body=dict(manifest),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        return result

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            found: dict[str, Any] = await self._call(
                "GET", _path(api_version, kind, namespace, name)
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def list(
        self, api_version: str, kind: str, namespace: str | None, selector: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in selector.items()))]
        found = await self._call("GET", _path(api_version, kind, namespace), query=query)
        return list(found.get("items") or [])

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            await self._call(
                "DELETE",
                _path(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        path = _path(api_version, kind, namespace, name) + (
            f"/{subresource}" if subresource else ""
        )
        result: dict[str, Any] = await self._call(
            "PATCH", path, body=dict(patch), content_type="application/merge-patch+json"
        )
        return result

    async def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server knows `kind` in `api_version` (e.g. a CRD is installed)."""
        try:
            found = await self._call("GET", f"/apis/{api_version}")
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("kind") == kind for r in found.get("resources") or [])

    async def secret_keys(self, namespace: str, name: str) -> set[str] | None:
        """The key names of a Secret (None: no such Secret). Values are dropped at once."""
        secret = await self.get("v1", "Secret", namespace, name)
        if secret is None:
            return None
        return set(secret.get("data") or {}) | set(secret.get("stringData") or {})

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One decoded Secret value, for the operator's own use (ksqlDB login); never logged."""
        secret = await self.get("v1", "Secret", namespace, name)
        if secret is None:
            return None
        raw = (secret.get("data") or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode()

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

"""What only the cluster can tell about a spec: strategies the signaler knows, and the
Secrets and ConfigMap it names. The first problem found becomes a Ready=False condition;
nothing is applied while one stands (the reconciler's `check`)."""

from __future__ import annotations

from collections.abc import Sequence

import cryptopipeline_operator._conditions as cond
from cryptopipeline.strategies import resolve_parameters
from cryptopipeline_operator._conditions import Condition
from cryptopipeline_operator._kube import Kube
from cryptopipeline_operator._manifests import Pipeline


async def spec_problem(
    kube: Kube, pipeline: Pipeline, known_strategies: frozenset[str]
) -> Condition | None:
    """A Ready=False condition for the first problem the schema cannot see, or None."""
    spec = pipeline.spec
    unknown = [s.name for s in spec.strategies or [] if s.name not in known_strategies]
    if unknown:
        known = ", ".join(sorted(known_strategies))
        return cond.false(
            cond.READY,
            "UnknownStrategy",
            f"unknown strategy {', '.join(repr(n) for n in unknown)}; known: {known}",
        )
    for strategy in spec.strategies or []:
        try:  # the signaler's own check: parameter names, types and ranges
            resolve_parameters(strategy.name, strategy.parameters)
        except ValueError as exc:
            return cond.false(cond.READY, "InvalidStrategy", f"strategies: {exc}")
    needed: list[tuple[str, str, Sequence[str]]] = []
    if spec.bot.coinbase_key_secret is not None:
        ref = spec.bot.coinbase_key_secret
        needed.append(("bot.coinbaseKeySecret", ref.name, ref.keys()))
    if spec.bot.kill_token_secret is not None:
        token = spec.bot.kill_token_secret
        needed.append(("bot.killTokenSecret", token.name, [token.key]))
    if spec.ksqldb is not None and spec.ksqldb.credentials_secret is not None:
        ref2 = spec.ksqldb.credentials_secret
        needed.append(
            ("ksqldb.credentialsSecret", ref2.name, [ref2.username_key, ref2.password_key])
        )
    for field, name, keys in needed:
        found = await kube.secret_keys(pipeline.namespace, name)
        if found is None:
            return cond.false(
                cond.READY, "SecretNotFound", f"{field}: Secret {name!r} does not exist"
            )
        missing = [k for k in keys if k not in found]
        if missing:
            return cond.false(
                cond.READY,
                "SecretKeyMissing",
                f"{field}: Secret {name!r} has no key {', '.join(repr(k) for k in missing)}",
            )
    if spec.ksqldb is not None and spec.ksqldb.migrations.config_map:
        name = spec.ksqldb.migrations.config_map
        if await kube.get("v1", "ConfigMap", pipeline.namespace, name) is None:
            return cond.false(
                cond.READY,
                "ConfigMapNotFound",
                f"ksqldb.migrations.configMap: ConfigMap {name!r} does not exist",
            )
    return None

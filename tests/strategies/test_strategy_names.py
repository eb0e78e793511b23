"""Strategy names have one source, `STRATEGIES`; what cannot import it is compared with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cryptopipeline.strategies import STRATEGIES, StrategyConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD = REPO_ROOT / "k8s" / "crd" / "cryptopipelines.cryptopipeline.io.yaml"


def _name_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    [version] = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["strategies"]["items"]["properties"]["name"]  # type: ignore[no-any-return]


def test_the_crd_accepts_every_strategy_name_and_lists_none_of_its_own() -> None:
    """The CRD only constrains the spelling: an unknown name must reach the operator, which
    checks it against `STRATEGIES` (an `UnknownStrategy` condition). Should the CRD ever
    list names (an enum), they must be exactly these."""
    schema = _name_schema()
    if "enum" in schema:
        assert sorted(schema["enum"]) == sorted(STRATEGIES)
    for name in STRATEGIES:
        assert re.fullmatch(schema["pattern"], name), name
        assert schema["minLength"] <= len(name) <= schema["maxLength"], name


def test_the_docs_table_lists_the_registered_strategies() -> None:
    text = (REPO_ROOT / "docs" / "signals.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted(STRATEGIES)


def test_a_name_outside_the_registry_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown strategy 'nope'; known: bollinger_"):
        StrategyConfig(name="nope")
    assert {StrategyConfig(name=name).name for name in STRATEGIES} == set(STRATEGIES)

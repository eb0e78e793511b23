"""Skip or fail when a test's tool is missing, depending on what tests/prepare.py promised.

`make test` runs tests/prepare.py first; it records in .work/prepared.json which steps are
ready and which this machine cannot do. A test whose tool is missing skips only when the
preparation did not promise it (pytest run by hand, or a machine without the toolchain);
if the preparation reported the tool ready, the missing tool is a broken set-up and fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import pytest

RECORD = Path(__file__).resolve().parent.parent / ".work" / "prepared.json"


def prepared() -> dict[str, object]:
    try:
        loaded = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def tool_missing(step: str, reason: str) -> NoReturn:
    """Skip with `reason`, or fail if tests/prepare.py reported `step` ready."""
    ready = prepared().get("ready", [])
    if isinstance(ready, list) and step in ready:
        pytest.fail(f"{reason} (tests/prepare.py reported '{step}' ready: the set-up is broken)")
    unavailable = prepared().get("unavailable", {})
    why = unavailable.get(step) if isinstance(unavailable, dict) else None
    pytest.skip(f"{reason}; {why}" if why else f"{reason}; run `python3 tests/prepare.py`")

"""The bot's kill switch topic (`<orders topic>_kill_switch`, compacted, key `kill_switch`):
the latest record is the switch's state (bot/_killswitch.py says why it has its own topic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KillSwitchRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    killed: bool
    reason: str = Field(default="", max_length=500)
    time: str = Field(default="", max_length=64)

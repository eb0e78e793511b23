"""`cryptopipeline-bot`, paused after the broker's first answer and before it is logged: the
crash test (test_bot_kafka.py) starts this instead of the program and kills -9 it there.

The pause is the bot's `after_submit` callback; the program itself ships no test hook.
"""

from __future__ import annotations

import asyncio

from cryptopipeline.bot import Bot, BotSettings
from cryptopipeline.core.service import run_service
from cryptopipeline.trading import OrderRequest

PAUSED = "TEST HOOK: paused after submit, before logging the outcome"


async def _pause(order: OrderRequest) -> None:
    print(PAUSED, flush=True)
    await asyncio.Event().wait()  # until the kill -9


if __name__ == "__main__":
    run_service(BotSettings, "cryptopipeline-bot", lambda s: Bot(s, after_submit=_pause))

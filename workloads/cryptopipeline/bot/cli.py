"""`cryptopipeline-bot`: configuration from the environment, signals, and the service."""

from __future__ import annotations

import asyncio
import signal

from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.bot.service import Bot
from cryptopipeline.core import configure_logging
from cryptopipeline.core.settings import load_or_exit


def load_settings() -> BotSettings:
    """Settings from CRYPTOPIPELINE_* variables; a bad value exits 2 naming the variable."""
    return load_or_exit(BotSettings, "cryptopipeline-bot")


async def _serve(settings: BotSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Bot(settings).run(stop)


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()

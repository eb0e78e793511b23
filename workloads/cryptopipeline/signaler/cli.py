"""`cryptopipeline-signaler`: configuration from the environment, signals, and the service."""

from __future__ import annotations

import asyncio
import signal

from cryptopipeline.core import configure_logging
from cryptopipeline.core.settings import load_or_exit
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler.service import Signaler


async def _serve(settings: SignalerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Signaler(settings).run(stop)


def main() -> None:
    settings = load_or_exit(SignalerSettings, "cryptopipeline-signaler")
    configure_logging(settings.log_level, json=settings.log_format == "json")
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()

"""`cryptopipeline-ingestor`: configuration from the environment, signals, and the service."""

from __future__ import annotations

import asyncio
import gc
import signal

from cryptopipeline.core import configure_logging
from cryptopipeline.core.settings import load_or_exit
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor.service import Ingestor


def load_settings() -> IngestorSettings:
    """Settings from CRYPTOPIPELINE_* variables; a bad value exits 2 naming the variable."""
    return load_or_exit(IngestorSettings, "cryptopipeline-ingestor")


async def _serve(settings: IngestorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Ingestor(settings).run(stop)


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    # Up to 50,000 buffered records are young objects the collector would walk again and
    # again: freeze what start-up made and collect less often (about a tenth of the CPU).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()

"""`cryptopipeline-bot`: the bot as a program (settings from CRYPTOPIPELINE_*)."""

from __future__ import annotations

from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.bot.service import Bot
from cryptopipeline.core.service import run_service


def main() -> None:
    run_service(BotSettings, "cryptopipeline-bot", Bot)


if __name__ == "__main__":
    main()

"""`cryptopipeline-signaler`: the signaler as a program (settings from CRYPTOPIPELINE_*)."""

from __future__ import annotations

from cryptopipeline.core.service import run_service
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler.service import Signaler


def main() -> None:
    run_service(SignalerSettings, "cryptopipeline-signaler", Signaler)


if __name__ == "__main__":
    main()

"""`cryptopipeline-ingestor`: the ingestor as a program (settings from CRYPTOPIPELINE_*)."""

from __future__ import annotations

from cryptopipeline.core.service import run_service
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor.service import Ingestor


def main() -> None:
    run_service(IngestorSettings, "cryptopipeline-ingestor", Ingestor, many_young_objects=True)


if __name__ == "__main__":
    main()

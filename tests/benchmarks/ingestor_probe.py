"""Run the unchanged ingestor (`cryptopipeline.ingestor.cli.main`) and keep every exact value
its produce-latency histogram observes, so the benchmarks can report p50 / p99 / max.

Usage: `python ingestor_probe.py OUT_FILE` with the usual CRYPTOPIPELINE_* environment. The
histogram measures frame received (`time.time_ns()` right after `ws.recv()`) to the broker's
acknowledgement (the aiokafka delivery future's callback); its buckets are too coarse for
percentiles, so this wrapper also appends each value to an array, written as float64 seconds
to OUT_FILE when the ingestor exits (SIGTERM). The cost is one array append per record.
"""

from __future__ import annotations

import sys
from array import array
from pathlib import Path
from typing import Any

from cryptopipeline.ingestor import cli
from cryptopipeline.ingestor._metrics import IngestorMetrics

_samples = array("d")
_original_init = IngestorMetrics.__init__


def _recording_init(self: IngestorMetrics, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    observe = self.produce_latency.observe
    append = _samples.append

    def observe_and_keep(amount: float, *rest: Any, **named: Any) -> None:
        append(amount)
        observe(amount, *rest, **named)

    self.produce_latency.observe = observe_and_keep  # type: ignore[method-assign]


def main() -> None:
    out = Path(sys.argv[1])
    IngestorMetrics.__init__ = _recording_init  # type: ignore[method-assign]
    try:
        cli.main()
    finally:
        out.write_bytes(_samples.tobytes())


if __name__ == "__main__":
    main()

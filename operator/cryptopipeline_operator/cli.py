"""`cryptopipeline-operator`: run the operator (kopf) with the project's defaults.

    cryptopipeline-operator [--namespace NS ...] [--peering NAME | --standalone]
                            [--liveness http://0.0.0.0:8080/healthz]

Without --namespace it watches all namespaces. Peering (kopf's leader election) makes a
second replica wait instead of fighting; it needs the KopfPeering CRDs (k8s/peering.yaml).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from cryptopipeline_operator import handlers  # noqa: F401 - registers the handlers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cryptopipeline-operator", description=__doc__)
    parser.add_argument("-n", "--namespace", action="append", default=[], help="watch only NS")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument("--peering", default="cryptopipeline-operator", help="peering name")
    peering.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="health URL")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=args.standalone,
            peering_name=None if args.standalone else args.peering,
            liveness_endpoint=args.liveness or None,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

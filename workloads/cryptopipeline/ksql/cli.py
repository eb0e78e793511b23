"""`cryptopipeline ksql migrate|status|validate|verify`: the migration runner's command line.

Exit codes: 0 success, 1 a failure (server error, timeout, failed statement, verify mismatch),
2 bad configuration or a bad migration file, 3 refused (an applied migration changed or is
missing), 77 verify skipped because no ksqlDB URL is configured.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cryptopipeline.ksql._client import KsqlError
from cryptopipeline.ksql._errors import ChecksumMismatchError, MissingMigrationError
from cryptopipeline.ksql._files import MigrationFileError
from cryptopipeline.ksql._migrate import apply_migrations
from cryptopipeline.ksql._settings import KsqlSettings
from cryptopipeline.ksql._status import MigrationStatus, migration_status, validate_migrations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_SKIPPED = 77
DEFAULT_MIGRATIONS_DIR = Path("ksqldb")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `ksql` on the main CLI's subparsers."""
    ksql: argparse.ArgumentParser = subparsers.add_parser(
        "ksql", help="ksqlDB migrations: apply, show status, validate, verify on a real server"
    )
    ksql.add_argument("ksql_action", choices=["migrate", "status", "validate", "verify"])
    ksql.add_argument("--url", help="ksqlDB server (default: CRYPTOPIPELINE_KSQL__URL)")
    ksql.add_argument("--username", help="basic-auth user (default: CRYPTOPIPELINE_KSQL__USERNAME)")
    ksql.add_argument(
        "--password-file",
        type=Path,
        help="file holding the basic-auth password (passwords are never taken as flags)",
    )
    ksql.add_argument("--migrations-dir", type=Path, default=DEFAULT_MIGRATIONS_DIR)
    ksql.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value for a ${NAME} variable in the migrations (repeatable)",
    )
    ksql.add_argument("--request-timeout", type=float, help="seconds per HTTP request")
    ksql.add_argument(
        "--bootstrap-servers",
        help="verify: Kafka to write the tick fixture to (default: CRYPTOPIPELINE_KAFKA__...)",
    )
    ksql.add_argument("--fixture", type=Path, help="verify: Coinbase JSON lines to use as ticks")
    ksql.add_argument(
        "--verify-timeout", type=float, default=180.0, help="verify: seconds to wait for candles"
    )
    ksql.add_argument("--keep", action="store_true", help="verify: keep the objects it created")
    return ksql


def _defines(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--define expects NAME=VALUE, got {pair!r}")
        values[name.strip().lower()] = value
    return values


def settings_from_args(args: argparse.Namespace) -> KsqlSettings:
    """Environment first, flags on top."""
    overrides: dict[str, Any] = {}
    if args.url:
        overrides["url"] = args.url
    if args.username:
        overrides["username"] = args.username
    if args.password_file:
        overrides["password_file"] = args.password_file
    if args.request_timeout:
        overrides["request_timeout_s"] = args.request_timeout
    return KsqlSettings(**overrides)


def _print_status(status: MigrationStatus) -> None:
    print(f"server version: {status.server_version or 'unknown'}")
    if not status.initialized:
        print("migration metadata not initialized: nothing applied yet")
    print(f"current version: {status.current_version if status.current_version else 'none'}")
    for row in status.versions:
        mark = {True: "", False: "  (FILE CHANGED)", None: ""}[row.checksum_matches]
        print(f"  V{row.version:06d}  {row.state:<9} {row.name}{mark}")
        if row.error_reason:
            print(f"             error: {row.error_reason}")
    for problem in status.problems:
        print(f"problem: {problem}")


def run(args: argparse.Namespace) -> int:
    """Run one `ksql` action; returns the exit code."""
    try:
        variables = _defines(args.define)
        settings = settings_from_args(args)
    except (ValueError, ValidationError) as exc:
        print(f"cryptopipeline ksql: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.ksql_action == "verify":
        if not settings.url:
            print(
                "cryptopipeline ksql verify: skipped: no ksqlDB URL configured "
                "(set CRYPTOPIPELINE_KSQL__URL or pass --url)",
                file=sys.stderr,
            )
            return EXIT_SKIPPED
        from cryptopipeline.ksql._verify import VerifyOptions, run_verify

        options = VerifyOptions(
            migrations_dir=args.migrations_dir,
            bootstrap_servers=args.bootstrap_servers,
            fixture=args.fixture,
            timeout_s=args.verify_timeout,
            keep=args.keep,
        )
        return asyncio.run(run_verify(settings, options))
    if not settings.url:
        print(
            "cryptopipeline ksql: no ksqlDB URL configured (CRYPTOPIPELINE_KSQL__URL or --url)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        if args.ksql_action == "migrate":
            report = asyncio.run(
                apply_migrations(settings, args.migrations_dir, variables=variables)
            )
            applied = ", ".join(str(v) for v in report.applied) or "none (up to date)"
            print(f"applied: {applied}; current version: {report.current_version or 'none'}")
            return EXIT_OK
        if args.ksql_action == "status":
            _print_status(
                asyncio.run(migration_status(settings, args.migrations_dir, variables=variables))
            )
            return EXIT_OK
        _print_status(
            asyncio.run(validate_migrations(settings, args.migrations_dir, variables=variables))
        )
        print("validated: every applied migration matches its file")
        return EXIT_OK
    except MigrationFileError as exc:
        print(f"cryptopipeline ksql: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (ChecksumMismatchError, MissingMigrationError) as exc:
        print(f"cryptopipeline ksql: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (KsqlError, OSError) as exc:
        print(f"cryptopipeline ksql: {exc}", file=sys.stderr)
        return EXIT_FAILED

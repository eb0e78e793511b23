"""The local pipeline without Kubernetes: Kafka, the exchange simulator and each workload as
child processes of one supervisor, stopped together on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptopipeline.core import PipelineSettings, ensure_topics
from cryptopipeline.localkafka import LocalKafka

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Program:
    """A child process of the local pipeline."""

    name: str
    argv: Sequence[str]
    ready_port: int | None = None  # the program is ready once this 127.0.0.1 port accepts
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalRunOptions:
    home: Path
    kafka_port: int = 9092
    bootstrap_servers: str | None = None  # an existing cluster: do not start Kafka here
    exchange: str = "sim"  # "sim" starts coinbase-sim; "live" uses Coinbase itself
    sim_port: int = 8765
    sim_args: Sequence[str] = ()
    products: Sequence[str] = ("BTC-USD",)
    ingestor_ops_port: int = 9101
    signaler_ops_port: int = 9102
    bot_ops_port: int = 9103


def _python_program(name: str, module: str, args: Sequence[str], **kw: object) -> Program:
    argv = [sys.executable, "-c", f"import {module} as m; m.main()", *args]
    return Program(name=name, argv=argv, **kw)  # type: ignore[arg-type]


def plan_programs(options: LocalRunOptions) -> list[Program]:
    """The child processes for these options, in start order (stopped in reverse)."""
    programs: list[Program] = []
    products = ",".join(options.products)
    ingestor_env = {
        "CRYPTOPIPELINE_EXCHANGE__PRODUCTS": products,
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": str(options.ingestor_ops_port),
        "CRYPTOPIPELINE_LOG_FORMAT": "text",
    }
    if options.exchange == "sim":
        sim = f"127.0.0.1:{options.sim_port}"
        programs.append(
            _python_program(
                "coinbase-sim",
                "cryptopipeline.sim.cli",
                [
                    *("--host", "127.0.0.1", "--port", str(options.sim_port)),
                    *("--products", products),
                    *options.sim_args,
                ],
                ready_port=options.sim_port,
            )
        )
        ingestor_env |= {
            "CRYPTOPIPELINE_EXCHANGE__WS_URL": f"ws://{sim}/",
            "CRYPTOPIPELINE_EXCHANGE__REST_URL": f"http://{sim}",
        }
    programs.append(
        _python_program(
            "ingestor",
            "cryptopipeline.ingestor.cli",
            [],
            ready_port=options.ingestor_ops_port,
            env=ingestor_env,
        )
    )
    programs.append(
        _python_program(
            "signaler",
            "cryptopipeline.signaler.cli",
            [],
            ready_port=options.signaler_ops_port,
            env={
                "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
                "CRYPTOPIPELINE_OPS__PORT": str(options.signaler_ops_port),
                "CRYPTOPIPELINE_LOG_FORMAT": "text",
                "CRYPTOPIPELINE_SIGNALER__START_FROM": "latest",
            },
        )
    )
    programs.append(
        _python_program(
            "bot",
            "cryptopipeline.bot.cli",
            [],
            ready_port=options.bot_ops_port,
            env={
                "CRYPTOPIPELINE_BROKER__MODE": "paper",
                "CRYPTOPIPELINE_TRADING__PRODUCTS": products,
                "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
                "CRYPTOPIPELINE_OPS__PORT": str(options.bot_ops_port),
                "CRYPTOPIPELINE_LOG_FORMAT": "text",
            },
        )
    )
    return programs


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies, even by SIGKILL (Linux),
    so no program outlives the pipeline that started it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _wait_port(port: int, process: asyncio.subprocess.Process) -> None:
    while process.returncode is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)  # not listening yet: nothing to await but time
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"exited with code {process.returncode} before listening on {port}")


async def _stop(name: str, process: asyncio.subprocess.Process, grace: float = 15.0) -> None:
    if process.returncode is not None:
        log.info("had exited", extra={"program": name, "exit_code": process.returncode})
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await process.wait()
    except TimeoutError:
        log.warning("did not stop in time; killing", extra={"program": name})
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    log.info("stopped", extra={"program": name, "exit_code": process.returncode})


async def run_local(options: LocalRunOptions, settings: PipelineSettings) -> int:
    """Start everything, wait for a signal or a child's death, stop everything. Exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    kafka: LocalKafka | None = None
    children: list[tuple[str, asyncio.subprocess.Process]] = []
    exit_code = 0
    try:
        if options.bootstrap_servers is None:
            kafka = LocalKafka(home=options.home / "kafka", port=options.kafka_port)
            log.info("starting Kafka", extra={"bootstrap_servers": kafka.bootstrap_servers})
            await asyncio.to_thread(kafka.start)
            await kafka.wait_ready()
            bootstrap = kafka.bootstrap_servers
        else:
            bootstrap = options.bootstrap_servers
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
        )
        await ensure_topics(settings.kafka, settings.topic_specs())
        child_env = {"CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
        for program in plan_programs(options):
            # Own session: a terminal's Ctrl-C reaches only us, and we stop them in order.
            process = await asyncio.create_subprocess_exec(
                *program.argv,
                env={**os.environ, **child_env, **program.env},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            children.append((program.name, process))
            if program.ready_port is not None:
                async with asyncio.timeout(60):
                    await _wait_port(program.ready_port, process)
            log.info("started", extra={"program": program.name, "pid": process.pid})
        log.info(
            "local pipeline running; Ctrl-C stops it",
            extra={"bootstrap_servers": bootstrap, "exchange": options.exchange},
        )
        waits = [asyncio.ensure_future(process.wait()) for _, process in children]
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopper, *waits]:
            task.cancel()
        if stopper not in done:
            dead = [(name, p.returncode) for name, p in children if p.returncode is not None]
            log.error("a program exited; stopping the pipeline", extra={"exited": dead})
            exit_code = 1
    except Exception:
        log.exception("local pipeline failed")
        exit_code = 1
    finally:
        for name, process in reversed(children):
            await _stop(name, process)
        if kafka is not None:
            await asyncio.to_thread(kafka.stop)
            log.info("stopped", extra={"program": "kafka"})
    return exit_code

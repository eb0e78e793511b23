"""The local pipeline without Kubernetes: Kafka, the exchange simulator and each workload as
child processes of one supervisor, stopped together on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.core import PipelineSettings
from cryptopipeline.core.kafka import ensure_topics, wait_for_coordinators
from cryptopipeline.core.settings import OPS_PORTS
from cryptopipeline.localkafka import LocalKafka
from cryptopipeline.signaler._settings import SignalerOptions

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Program:
    """A child process of the local pipeline."""

    name: str
    argv: Sequence[str]
    ready_port: int | None = None  # the program is ready once this 127.0.0.1 port accepts
    env: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""  # where a person looks at it (printed once everything runs)
    port_flag: str = ""  # the flag that moves it, named when its port is taken


@dataclass
class LocalRunOptions:
    home: Path
    kafka_port: int = 9092
    bootstrap_servers: str | None = None  # an existing cluster: do not start Kafka here
    exchange: str = "sim"  # "sim" starts coinbase-sim; "live" uses Coinbase itself
    feed: str = "exchange"  # "exchange" (ws-feed) or "advanced-trade" (market_trades)
    sim_port: int = 8765
    sim_args: Sequence[str] = ()
    products: Sequence[str] = ("BTC-USD",)
    ingestor_ops_port: int = OPS_PORTS["ingestor"]
    signaler_ops_port: int = OPS_PORTS["signaler"]
    bot_ops_port: int = OPS_PORTS["bot"]
    candle_seconds: int = 5


def _python_program(name: str, module: str, args: Sequence[str], **kw: object) -> Program:
    argv = [sys.executable, "-c", f"import {module} as m; m.main()", *args]
    return Program(name=name, argv=argv, **kw)  # type: ignore[arg-type]


def plan_programs(options: LocalRunOptions) -> list[Program]:
    """The child processes for these options, in start order (stopped in reverse)."""
    programs: list[Program] = []
    products = ",".join(options.products)
    ingestor_env = {
        "CRYPTOPIPELINE_EXCHANGE__FEED": options.feed,
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
                endpoint=f"ws://{sim}/ and ws://{sim}/advanced-trade (REST http://{sim}/)",
                port_flag="--sim-port",
            )
        )
        path = "/advanced-trade" if options.feed == "advanced-trade" else "/"
        ingestor_env |= {
            "CRYPTOPIPELINE_EXCHANGE__WS_URL": f"ws://{sim}{path}",
            "CRYPTOPIPELINE_EXCHANGE__REST_URL": f"http://{sim}",
        }
    programs.append(
        _python_program(
            "ingestor",
            "cryptopipeline.ingestor.cli",
            [],
            ready_port=options.ingestor_ops_port,
            env=ingestor_env,
            endpoint=f"http://127.0.0.1:{options.ingestor_ops_port}/metrics (/readyz)",
            port_flag="--ingestor-ops-port",
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
                # Short candles and periods: signals within a couple of minutes locally.
                "CRYPTOPIPELINE_CANDLES__INTERVALS_S": str(options.candle_seconds),
                "CRYPTOPIPELINE_STRATEGIES": _LOCAL_STRATEGIES,
            },
            endpoint=f"http://127.0.0.1:{options.signaler_ops_port}/metrics (/readyz)",
            port_flag="--signaler-ops-port",
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
            endpoint=f"http://127.0.0.1:{options.bot_ops_port}/metrics (/api/portfolio)",
            port_flag="--bot-ops-port",
        )
    )
    return programs


_LOCAL_STRATEGIES = (
    '[{"name":"sma_crossover","parameters":{"fast":3,"slow":8}},'
    '{"name":"ema_crossover","parameters":{"fast":3,"slow":8}},'
    '{"name":"rsi_threshold","parameters":{"period":5}},'
    '{"name":"macd_cross","parameters":{"fast":3,"slow":8,"signal":3}},'
    '{"name":"bollinger_breakout","parameters":{"period":10}}]'
)


def preflight(options: LocalRunOptions, programs: list[Program]) -> None:
    """Fail before starting anything, with the flag to change, when a port is taken or Java
    is missing: half a pipeline is worse than none."""
    wanted: list[tuple[int, str]] = []
    if options.bootstrap_servers is None:
        if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise RuntimeError("Java 17+ is needed to run Kafka here (or pass --bootstrap-servers)")
        wanted += [(options.kafka_port, "Kafka (--kafka-port)"),
                   (options.kafka_port + 1, "Kafka's controller (--kafka-port + 1)")]  # fmt: skip
    wanted += [(p.ready_port, f"{p.name} ({p.port_flag})") for p in programs if p.ready_port]
    for port, what in wanted:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise RuntimeError(f"port 127.0.0.1:{port} for {what} is in use") from None


def _summary(bootstrap: str, programs: list[Program]) -> str:
    lines = ["", "CryptoPipeline is running locally (Ctrl-C stops everything):",
             f"  {'kafka':<13} {bootstrap}"]  # fmt: skip
    lines += [f"  {p.name:<13} {p.endpoint}" for p in programs]
    lines += [
        "  watch it:     cryptopipeline status | cryptopipeline tail btc_usd_trade_signals",
        "",
    ]
    return "\n".join(lines)


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
    programs = plan_programs(options)
    preflight(options, programs)
    started = time.monotonic()
    try:
        if options.bootstrap_servers is None:
            kafka = LocalKafka(home=options.home / "kafka", port=options.kafka_port)
            log.info("starting Kafka", extra={"bootstrap_servers": kafka.bootstrap_servers})
            await asyncio.to_thread(kafka.start)
            await kafka.wait_ready()
            log.info("Kafka ready", extra={"seconds": round(time.monotonic() - started, 1)})
            bootstrap = kafka.bootstrap_servers
        else:
            bootstrap = options.bootstrap_servers
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
        )
        await ensure_topics(settings.kafka, settings.topic_specs())
        # A fresh broker makes its internal topics on first demand; wait here so the workloads
        # never meet "coordinator not available" (logged at ERROR by aiokafka) on a normal start.
        signaler = SignalerOptions()
        await wait_for_coordinators(
            settings.kafka,
            group_ids=[signaler.group_id, BotSettings.model_fields["consumer_group"].default],
            transactional_ids=[signaler.transactional_id],
        )
        child_env = {"CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
        for program in programs:
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
        print(_summary(bootstrap, programs), flush=True)
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

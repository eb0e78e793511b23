"""The bot's ops endpoints: probes and /metrics (open), and the token-guarded API:
/api/portfolio (GET), /api/kill and /api/release (POST).

A kill applies in the process at once and is then recorded in the kill switch topic; a release
is recorded first and applies only once Kafka took it (docs/bot.md, "The kill switch").
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from cryptopipeline.bot._killswitch import KILL_SWITCH_KEY
from cryptopipeline.bot._orderlog import now_text
from cryptopipeline.core.ops import OpsRequest, OpsServer
from cryptopipeline.records import KillSwitchRecord

if TYPE_CHECKING:
    from cryptopipeline.bot.service import Bot

log = logging.getLogger(__name__)


class BotApi:
    """The answers of the ops server, read from (and, for kill / release, acting on) a bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def server(self) -> OpsServer:
        bot, ops = self.bot, self.bot.settings.ops
        return OpsServer(
            bot.metrics.registry, live=self.live, ready=self.ready, host=ops.host, port=ops.port,
            routes={("GET", "/api/portfolio"): self.portfolio_route,
                    ("POST", "/api/kill"): self.kill_route,
                    ("POST", "/api/release"): self.release_route},
        )  # fmt: skip

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        bot = self.bot
        ok = bot.recovered and bot.consuming and not bot.auth_failed
        return ok, {
            "recovered": bot.recovered,
            "consuming": bot.consuming,
            "broker": bot.broker.name,
            "broker_auth_failed": bot.auth_failed,
            "kill_switch": bot.risk.killed,
        }

    def _refused(self, request: OpsRequest) -> tuple[int, Any] | None:
        """None when the request carries the ops token; else the answer that refuses it.
        No token configured (or an empty one) disables the guarded routes: 403."""
        token = self.bot.settings.ops.kill_token
        if token is None:
            return 403, {"error": "disabled: no kill token is configured "
                                  "(CRYPTOPIPELINE_OPS__KILL_TOKEN)"}  # fmt: skip
        header = request.headers.get("authorization", "")
        given = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return 401, {"error": "bad or missing bearer token"}
        return None

    def portfolio_route(self, request: OpsRequest) -> tuple[int, Any]:
        """Positions are private: the token is needed whenever one is configured; without
        one the view answers only on a loopback bind (the local run), else 403."""
        ops = self.bot.settings.ops
        if ops.kill_token is None and _is_loopback(ops.host):
            return self.portfolio_view()
        return self._refused(request) or self.portfolio_view()

    def portfolio_view(self) -> tuple[int, Any]:
        bot = self.bot
        body = bot.blotter.portfolio.snapshot()
        body["open_orders"] = [
            {"client_order_id": o.client_order_id, "product_id": o.product_id,
             "state": o.state.value, "exchange_order_id": o.exchange_order_id}
            for o in bot.blotter.open_orders()
        ]  # fmt: skip
        body["kill_switch"] = bot.risk.killed
        body["broker"] = bot.broker.name
        return 200, body

    async def kill_route(self, request: OpsRequest) -> tuple[int, Any]:
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.bot.kill("kill endpoint")  # orders stop now, before the record is durable
        try:
            await self._record_kill_switch(True, "kill endpoint")
        except Exception as exc:  # still killed in this process; say it is not durable yet
            problem = str(exc)[:200] or type(exc).__name__
            log.error("kill switch tripped but not recorded", extra={"error": problem})
            return 503, {"kill_switch": True, "durable": False, "error": problem}
        return 200, {"kill_switch": True, "durable": True}

    async def release_route(self, request: OpsRequest) -> tuple[int, Any]:
        refused = self._refused(request)
        if refused is not None:
            return refused
        risk = self.bot.risk
        try:
            await self._record_kill_switch(False, "release endpoint")
        except Exception as exc:  # not recorded: stay killed, a restart would kill again
            problem = str(exc)[:200] or type(exc).__name__
            log.error("kill switch release not recorded; still killed",
                      extra={"error": problem})  # fmt: skip
            return 503, {"kill_switch": risk.killed, "error": problem}
        if risk.killed:
            log.warning("kill switch released", extra={"was": risk.kill_reason})
        risk.release()
        self.bot.metrics.killed.set(0)
        return 200, {"kill_switch": False}

    async def _record_kill_switch(self, killed: bool, reason: str) -> None:
        bot = self.bot
        record = KillSwitchRecord(killed=killed, reason=reason, time=now_text())
        limit = bot.settings.ops.record_timeout_s  # an answer even when Kafka is down
        async with asyncio.timeout(limit):
            await bot.order_log.publish(
                bot.settings.kill_switch_topic, KILL_SWITCH_KEY, record.model_dump_json().encode()
            )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

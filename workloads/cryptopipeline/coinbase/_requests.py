"""Parsing of client requests on the Exchange feed: `subscribe` and `unsubscribe`.

Both forms of `channels` are accepted: plain names, which take the root `product_ids`, and
objects `{"name": ..., "product_ids": [...]}`, which take their own ids plus the root ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson


class FeedRequestError(ValueError):
    """A request the feed rejects; `message` and `reason` become the `error` reply."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(f"{message}: {reason}")
        self.message = message
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """A parsed subscribe/unsubscribe: channel name -> product ids (possibly empty)."""

    type: Literal["subscribe", "unsubscribe"]
    channels: dict[str, list[str]]


def _product_list(value: Any, failure: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise FeedRequestError(failure, "product_ids must be a list of strings")
    return list(value)


def parse_feed_request(raw: str | bytes) -> FeedRequest:
    """Parse one text frame sent by a client; raise `FeedRequestError` when it is not valid."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FeedRequestError("Malformed JSON", str(exc)) from None
    if not isinstance(body, dict):
        raise FeedRequestError("Malformed JSON", "message must be a JSON object")
    kind = body.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        raise FeedRequestError(
            "Failed to subscribe", "Type has to be either subscribe or unsubscribe"
        )
    failure = "Failed to subscribe" if kind == "subscribe" else "Failed to unsubscribe"
    root = _product_list(body.get("product_ids"), failure)
    channels_value = body.get("channels")
    if not channels_value:
        raise FeedRequestError(failure, "No channels provided")
    if not isinstance(channels_value, list):
        raise FeedRequestError(failure, "channels must be a list")
    channels: dict[str, list[str]] = {}
    for entry in channels_value:
        if isinstance(entry, str):
            name, own = entry, []
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, own = entry["name"], _product_list(entry.get("product_ids"), failure)
        else:
            raise FeedRequestError(failure, "channel must be a name or {name, product_ids}")
        merged = channels.setdefault(name, [])
        for product in [*own, *root]:
            if product not in merged:
                merged.append(product)
    return FeedRequest(kind, channels)

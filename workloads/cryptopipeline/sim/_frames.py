"""WebSocket text frames, built once per message and shared by every subscriber.

Server-to-client frames are never masked (RFC 6455 section 5.1), so the bytes of a frame do
not depend on the connection: the feed encodes each message with orjson, frames it once, and
writes the same bytes to every subscriber. Valid only without permessage-deflate, which the
simulator does not negotiate.
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (UTF-8 JSON)."""
    length = len(payload)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, length) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, length) + payload


class ReplyFrame(bytes):
    """A frame that answers the client's own request (subscriptions, errors, the last_match a
    subscribe brings); fault injection, which applies to feed frames only, leaves it alone."""

    __slots__ = ()

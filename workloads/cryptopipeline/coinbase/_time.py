"""Coinbase's timestamp format: RFC 3339 in UTC with exactly six fractional digits.

Frames captured byte-for-byte from the Exchange feed keep trailing zeros
(`2021-04-17T16:43:37.079420Z`, `2021-04-17T16:43:37.097000Z`), the documented l2update example
shows `0001-01-01T00:00:00.000000Z`, and a 2024 BTC-USD ticker capture has every `time` 27
characters long. Some third-party test files show trimmed fractions
(`2022-09-12T14:28:52.58496Z`), written by a Go program re-serialising the messages: the parser
accepts any fraction length, the formatter writes Coinbase's fixed six digits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
"""What `format_time` produces (and what the Exchange feed sends)."""

_PARSE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(moment: datetime | int) -> str:
    """Format an aware datetime, or integer microseconds since the epoch, the Coinbase way."""
    if isinstance(moment, int):
        seconds, micros = divmod(moment, 1_000_000)
        whole = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    else:
        if moment.tzinfo is None:
            raise ValueError("format_time needs an aware datetime (UTC)")
        utc = moment.astimezone(UTC)
        whole = utc.strftime("%Y-%m-%dT%H:%M:%S")
        micros = utc.microsecond
    return f"{whole}.{micros:06d}Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (any fraction length; beyond microseconds is truncated)."""
    match = _PARSE.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "").ljust(6, "0")[:6])
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros)
    return (naive - offset).replace(tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

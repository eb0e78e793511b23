"""Coinbase's timestamp format: RFC 3339 in UTC with exactly six fractional digits.

Frames captured byte-for-byte from the Exchange feed keep trailing zeros
(`2021-04-17T16:43:37.079420Z`, `2021-04-17T16:43:37.097000Z`), the documented l2update example
shows `0001-01-01T00:00:00.000000Z`, and a 2024 BTC-USD ticker capture has every `time` 27
characters long. Some third-party test files show trimmed fractions
(`2022-09-12T14:28:52.58496Z`), written by a Go program re-serialising the messages: the parser
accepts any fraction length, the formatter writes Coinbase's fixed six digits.

`epoch_us` is the one conversion of such a time to integer microseconds since the epoch that
the feed's readers (the ingestor, market data, the bot) and the simulator's replay share.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
"""What `format_time` produces (and what the Exchange feed sends)."""

_PARSE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:\d{2})$",
    re.ASCII,  # \d is [0-9]: other scripts' digits are not RFC 3339
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
    return _since_epoch(moment.astimezone(UTC))


def _since_epoch(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


MAX_TIME_TEXT = 40
"""No RFC 3339 time is longer (nine fraction digits and an offset make 35 characters); a longer
text is refused before any parsing."""

_LAST_SECOND: list[Any] = ["", 0]
"""The last whole second converted ("2026-01-01T00:00:00", its epoch microseconds): a feed's
times share their second with the time before, so most conversions skip the datetime parse."""


def epoch_us(text: object, utc_only: bool = False) -> int:
    """Microseconds since the epoch of an RFC 3339 time (any fraction length, beyond
    microseconds truncated); `ValueError` if `text` is not one. `utc_only` also refuses any
    zone but `Z` (the feed's times are UTC).

    The hot path of every feed reader: Coinbase's own 27-character form parses only its six
    fraction digits when its whole second is the one converted last.
    """
    if type(text) is str and len(text) == 27 and text[19] == "." and text[26] == "Z":
        fraction = text[20:26]
        if fraction.isascii() and fraction.isdigit():
            second = text[:19]
            cache = _LAST_SECOND
            if second != cache[0]:
                cache[1] = _convert(second + "Z", utc_only)
                cache[0] = second
            return int(cache[1]) + int(fraction)
    return _convert(text, utc_only)


def _convert(text: object, utc_only: bool) -> int:
    if (
        not isinstance(text, str)
        or len(text) > MAX_TIME_TEXT
        or (utc_only and not text.endswith(("Z", "z")))
    ):
        zone = " UTC" if utc_only else ""
        raise ValueError(f"time {str(text)[:MAX_TIME_TEXT]!r} is not an RFC 3339{zone} timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return _since_epoch(moment)  # not astimezone(): 0001-01-01T00:00:00+01:00 overflows it

"""How long a server asked us to wait: ``Retry-After`` and the rate-limit reset headers, parsed once.

The API collectors (``collectors/api.py``) and the status-page bridge
(``bridge/providers``) both honour these headers; they share this one parser so
that an odd value means the same thing everywhere:

* ``Retry-After: 120`` (RFC 9110 delay-seconds; a decimal fraction is accepted)
  waits 120 s; a negative number waits 0 s.
* ``Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`` (an HTTP-date) waits until then.
  A date without a zone (``-0000``, or none at all) is read as GMT, which is what
  RFC 9110 says every HTTP-date is, never as the exporter's local time.  A date in
  the past waits 0 s.
* ``X-RateLimit-Reset: 1700000000`` is a Unix time (SendGrid, GitHub-style), while
  ``RateLimit-Reset: 30`` is a delay (the IETF draft, Resend): a number above
  :data:`UNIX_TIME_THRESHOLD` is read as a Unix time, anything else as seconds.
* Anything else is unusable and gives ``None`` (the caller falls back to its
  default): ``nan``, ``inf``, ``1e3``, ``1_000``, non-ASCII digits, text.
* Every wait is capped at ``cap``: a wrong header must not silence a target or
  freeze a page for days.  A huge number waits ``cap``; a value longer than 64
  characters is no delay, date or Unix time and is unusable.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

# plain decimal numbers only: float() would also take "nan", "inf", "1e3", "1_000" and "١٢"
_NUMBER_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# longer header values are not a delay, a date or a Unix time: do not even parse them
_MAX_CHARS = 64
# seconds since 1970 after this are Unix times (2001-09-09), smaller values are delays
UNIX_TIME_THRESHOLD = 1e9
# the default cap: a wrong header must not silence a target or freeze a status page for a day
MAX_WAIT = 3600.0


def _number(text: str) -> float | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    # no "nan" gets here; a 400-digit number is inf, which the callers' cap takes
    return float(text)


def _clamp(seconds: float, cap: float) -> float:
    return min(max(0.0, seconds), cap)


def parse_retry_after(value: str | None, now: float | None = None, cap: float = MAX_WAIT) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date), in ``[0, cap]``; None if unusable.

    ``now`` is the wall-clock time an HTTP-date is measured from (default ``time.time()``).
    """
    if not value:
        return None
    text = value.strip()
    if not text or len(text) > _MAX_CHARS:
        return None
    seconds = _number(text)
    if seconds is not None:
        return _clamp(seconds, cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        at = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return _clamp(at - (time.time() if now is None else now), cap)


def parse_reset(value: str | None, now: float | None = None, cap: float = MAX_WAIT) -> float | None:
    """Seconds to wait from an ``X-RateLimit-Reset``/``RateLimit-Reset`` value (Unix time or delay); None if bad."""
    if not value:
        return None
    text = value.strip()
    if len(text) > _MAX_CHARS:
        return None
    number = _number(text)
    if number is None:
        return None
    if number > UNIX_TIME_THRESHOLD:
        number -= time.time() if now is None else now
    return _clamp(number, cap)

"""The log lines of one collection, for ``/probe?target=NAME&debug=true``.

A debug probe runs its collection inside :func:`capture`. A handler on the root
logger keeps the records emitted in that context only: the request's own task
and the tasks it starts (the collection and its children inherit the context),
never another request's lines. While any capture is active the root logger
passes debug records, and the other handlers keep the level they had, so the
operator's log output does not change.

The records are formatted like the exporter's own logfmt lines, through the
engine's redactor, when the debug answer is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from exporter.log import LogfmtFormatter
from exporter.redact import Redactor

# A debug answer keeps at most this many lines: a collector logging in a loop must
# not grow one request's memory without bound.
MAX_LINES = 500


class Capture:
    """The records of one debug run; ``dropped`` counts those past the limit."""

    def __init__(self, limit: int = MAX_LINES) -> None:
        self.limit = limit
        self.records: list[logging.LogRecord] = []
        self.dropped = 0

    def lines(self, redactor: Redactor) -> list[str]:
        formatter = LogfmtFormatter(redactor)
        out = [formatter.format(record) for record in self.records]
        if self.dropped:
            out.append(f"... {self.dropped} more lines dropped (limit {self.limit})")
        return out


_CURRENT: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("debug_capture", default=None)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        capture = _CURRENT.get()
        if capture is None:
            return
        if len(capture.records) < capture.limit:
            capture.records.append(record)
        else:
            capture.dropped += 1


_HANDLER = _Handler(logging.DEBUG)
_active = 0
_saved_root_level = logging.NOTSET
_pinned: list[logging.Handler] = []


def _enter() -> None:
    global _active, _saved_root_level
    _active += 1
    if _active > 1:
        return
    root = logging.getLogger()
    _saved_root_level = root.level
    # handlers that took their level from the root keep it while the root opens up
    for handler in root.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(root.getEffectiveLevel())
            _pinned.append(handler)
    root.addHandler(_HANDLER)
    root.setLevel(logging.DEBUG)


def _leave() -> None:
    global _active
    _active -= 1
    if _active > 0:
        return
    root = logging.getLogger()
    root.removeHandler(_HANDLER)
    root.setLevel(_saved_root_level)
    for handler in _pinned:
        handler.setLevel(logging.NOTSET)
    _pinned.clear()


@contextlib.contextmanager
def capture(limit: int = MAX_LINES) -> Iterator[Capture]:
    """Collect the log records emitted in this context (and tasks started from it)."""
    current = Capture(limit)
    token = _CURRENT.set(current)
    _enter()
    try:
        yield current
    finally:
        _CURRENT.reset(token)
        _leave()

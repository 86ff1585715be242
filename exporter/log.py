"""Structured logs in logfmt or JSON, with every line passed through the redactor.

Call sites log a short constant message and put the variable parts in
``extra={"kv": {...}}``, so lines are greppable and machine-readable:

    ts=2026-11-25T08:00:00.000Z level=warn logger=exporter.scrape msg="collection failed"
        collector=redis target=cache err="..."
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from exporter.redact import Redactor, redact_fields

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": _NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    kv = getattr(record, "kv", None)
    if isinstance(kv, dict):
        # a field named like a credential is masked whole, whatever its length; the
        # formatter then masks URL passwords and known secrets in the whole line
        fields.update(redact_fields(kv))
    if record.exc_info and record.levelno <= logging.DEBUG:
        fields["trace"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_info and record.exc_info[1] is not None:
        fields.setdefault("err", f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
    return fields


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())
        return self.redactor.redact(line)


class JSONFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in _fields(record).items()}
        return self.redactor.redact(json.dumps(fields, ensure_ascii=False))


def setup(level: str, fmt: str, redactor: Redactor) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(redactor) if fmt == "json" else LogfmtFormatter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # aiohttp logs every request at info; that is access-log noise for an exporter
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

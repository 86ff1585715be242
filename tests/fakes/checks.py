"""Assertions every API collector's tests share: secrets stay out, errors are clear."""

from __future__ import annotations

import logging
from typing import Any

import pytest


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log line with its structured fields, as they would be written."""
    out = []
    for record in caplog.records:
        kv: Any = getattr(record, "kv", {})
        out.append(f"{record.levelname} {record.getMessage()} {kv}")
    return "\n".join(out)


def collection_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        str(r.kv["err"])  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "collection failed" and hasattr(r, "kv")
    ]


def assert_no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text, "the secret leaked"


def assert_clean_error(caplog: pytest.LogCaptureFixture, *needles: str) -> str:
    errors = collection_errors(caplog)
    assert errors, f"no collection failure logged: {logged(caplog)}"
    err = errors[-1]
    for needle in needles:
        assert needle.lower() in err.lower(), f"{needle!r} not in {err!r}"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    return err


def capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

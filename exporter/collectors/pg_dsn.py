"""libpq URL checks shared by the PostgreSQL and PgBouncer collectors (no driver imported)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from exporter.config import file_problem

# DSN parameters naming files the driver reads when it connects.
_FILE_PARAMS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


def check_dsn(
    dsn: str, has_password: bool, example: str = "postgresql://user@127.0.0.1:5432/dbname"
) -> Iterator[tuple[str, str]]:
    """``check()`` pairs for a libpq URL: scheme, host, port, sslmode, one password only."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError as exc:
        yield "dsn", f"invalid DSN: {exc}"
        return
    if parts.scheme not in ("postgres", "postgresql"):
        yield "dsn", f"must be a URL such as {example} (key=value DSNs are not supported)"
        return
    params = dict(parse_qsl(parts.query))
    if not parts.hostname and "host" not in params:
        yield "dsn", f"missing host, e.g. {example}"
    if port is not None and not 0 < port < 65536:
        yield "dsn", f"invalid port {port}"
    if parts.password and has_password:
        yield "password", "the DSN already has a password; set one or the other"
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
        yield "dsn", f"unknown sslmode {sslmode!r}"
    for key in _FILE_PARAMS:
        value = params.get(key)
        # relative paths stay relative to the working directory, as the driver reads them;
        # "system" is libpq's name for the system CA store, not a file
        if value and not (key == "sslrootcert" and value == "system"):
            problem = file_problem(Path(value))
            if problem is not None:
                yield "dsn", f"{key}: {problem}"


def dsn_password(dsn: str) -> list[str]:
    """The DSN's password, for the redactor; [] when there is none."""
    try:
        password = urlsplit(dsn).password
    except ValueError:
        return []
    return [unquote(password)] if password else []

"""The connection to one server: client options, and helpers for raw replies and errors."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from exporter.collectors.redis.config import RedisTarget


def make_client(cfg: RedisTarget, db: int, max_connections: int = 4) -> aioredis.Redis:
    kwargs: dict[str, Any] = {
        "max_connections": max_connections,
        "socket_connect_timeout": 5,
        "client_name": "stack-exporter",
        # redis-py announces itself with CLIENT SETINFO, which Redis < 7.2
        # rejects: every new connection would add to the server's errorstats
        "lib_name": None,
        "lib_version": None,
        # one immediate retry replaces a connection the server dropped
        # (restart, idle timeout); the default backs off for seconds, and
        # also retries a wrong password, which only burns the deadline
        "retry": Retry(NoBackoff(), 1),
    }
    if cfg.password is not None:
        kwargs["password"] = cfg.password.get()
    if cfg.username is not None:
        kwargs["username"] = cfg.username
    if cfg.tls is not None:
        kwargs["ssl_ca_certs"] = cfg.tls.ca_file
        kwargs["ssl_certfile"] = cfg.tls.cert_file
        kwargs["ssl_keyfile"] = cfg.tls.key_file
        if cfg.tls.insecure_skip_verify:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
    pool = aioredis.ConnectionPool.from_url(cfg.url, **kwargs)
    pool.connection_kwargs["db"] = db  # from_url lets the URL's /N win over db=
    client = aioredis.Redis(connection_pool=pool)
    # raw INFO text: our parser is simpler and faster than redis-py's dicts
    client.set_response_callback("INFO", _raw)
    return client


def _raw(response: Any, **options: Any) -> Any:
    return response


def text(value: Any) -> str:
    """A reply as text, whether redis-py decoded it or not."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for logs and CollectError, without repeating a message that is only the type."""
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message != type(exc).__name__ else message

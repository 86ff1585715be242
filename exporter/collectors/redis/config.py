"""The ``redis`` section: one target per server, with its key groups and TLS."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from exporter.schema import Duration, Secret, TargetConfig, check_url, url_password

# What one reply may occupy (client.py): INFO ALL, the largest reply we ask
# for, is ~20 KB, so 64 MiB only stops a broken or hostile server.
DEFAULT_MAX_REPLY_BYTES = 64 * 2**20
MIN_MAX_REPLY_BYTES = 2**20
MAX_MAX_REPLY_BYTES = 2**30


@dataclass(frozen=True, kw_only=True)
class KeyPattern:
    name: str
    pattern: str
    db: int | None = None  # default: the target URL's database


@dataclass(frozen=True, kw_only=True)
class RedisTLS:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, kw_only=True)
class RedisTarget(TargetConfig):
    name: str
    url: str
    username: str | None = None
    password: Secret | None = None
    tls: RedisTLS | None = None
    key_patterns: tuple[KeyPattern, ...] = ()
    # Key groups are counted in the background at most this often.
    key_pattern_refresh_interval: Duration = Duration(60.0)
    # Budget of one counting pass over all key_patterns together: SCAN calls
    # (COUNT 1000 each) and time, shared among the patterns (keys.py).
    key_pattern_max_scan_calls: int = 1000
    key_pattern_max_duration: Duration = Duration(10.0)
    # What one reply may occupy: bytes, plus 64 per element of an array.
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    def check(self) -> Iterable[tuple[str, str]]:
        url_problems = list(
            check_url(
                self.url,
                schemes=("redis", "rediss", "unix"),
                example="redis://127.0.0.1:6379/0",
                credentials_allowed=True,
                host_required=not self.url.startswith("unix:"),
            )
        )
        yield from url_problems
        if url_problems:
            return
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            if not parts.path:
                yield "url", "unix:// URL needs a socket path, e.g. unix:///run/redis/redis.sock"
        else:
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                yield "url", f"the path must be a database number such as /0, got /{db}"
        if parts.password and self.password is not None:
            yield "password", "the URL already has a password; set one or the other"
        if self.tls is not None and parts.scheme != "rediss":
            yield "tls", "tls settings need a rediss:// URL"
        seen: set[str] = set()
        for i, kp in enumerate(self.key_patterns):
            if kp.name in seen:
                yield f"key_patterns[{i}].name", f"duplicate key group name {kp.name!r}"
            seen.add(kp.name)
            if not kp.pattern:
                yield f"key_patterns[{i}].pattern", "must not be empty"
            if kp.db is not None and kp.db < 0:
                yield f"key_patterns[{i}].db", "must not be negative"
        if self.key_pattern_max_scan_calls < max(1, len(self.key_patterns)):
            yield (
                "key_pattern_max_scan_calls",
                f"must be at least 1 and at least the number of key_patterns ({len(self.key_patterns)}):"
                " the budget is shared by all patterns of a pass and each needs one SCAN call",
            )
        if not MIN_MAX_REPLY_BYTES <= self.max_reply_bytes <= MAX_MAX_REPLY_BYTES:
            yield (
                "max_reply_bytes",
                f"must be between {MIN_MAX_REPLY_BYTES} (1 MiB) and {MAX_MAX_REPLY_BYTES} (1 GiB),"
                f" got {self.max_reply_bytes}",
            )

    def secret_values(self) -> list[str]:
        return url_password(self.url)

    def db(self) -> int:
        path = urlsplit(self.url).path.lstrip("/")
        return int(path) if path.isdigit() else 0

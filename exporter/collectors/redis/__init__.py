"""Redis: servers, replicas, cluster nodes and sentinels.

Names follow redis_exporter wherever its name is correct, so community
dashboards and alerts keep working; the renames are listed in
docs/metrics/redis.md.  One module per concern:

* ``config``: the target's settings (:class:`RedisTarget`) and their checks;
* ``client``: connection options and reply helpers;
* ``info``: the INFO parser, its field table and the families built from it;
* ``latency``: the slow log and the latency monitor;
* ``cluster``, ``sentinel``: what each of those modes adds;
* ``keys``: key groups, counted with SCAN in the background;
* ``collector``: one scrape, from the round trip to the families.

The collector, and redis-py with it, loads on first use of :data:`COLLECTOR`:
validating a config needs only ``config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.collectors.redis.config import KeyPattern, RedisTarget, RedisTLS

if TYPE_CHECKING:
    from exporter.collectors.redis.collector import RedisCollector

    COLLECTOR = RedisCollector

__all__ = ["COLLECTOR", "KeyPattern", "RedisCollector", "RedisTLS", "RedisTarget"]


def __getattr__(name: str) -> Any:
    if name in ("COLLECTOR", "RedisCollector"):
        from exporter.collectors.redis.collector import RedisCollector

        return RedisCollector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

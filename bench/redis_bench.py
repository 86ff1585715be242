"""Redis scenario: stack-exporter against Debian's prometheus-redis-exporter (1.45).

Backend: a private redis-server on a free loopback port, no persistence, filled with
150k keys so INFO keyspace, memory figures and a ``session:*`` SCAN look like a real cache:

- 100,000 ``session:<uuid>`` strings with a TTL of 15 min to 24 h,
- 30,000 ``user:<n>`` hashes of five fields,
- 20,000 ``cache:<n>`` strings of 64 to 512 bytes.

Options (``--set key=value``):

- ``count_keys=1`` also passes ``--count-keys=db0=session:*`` to redis_exporter, so both
  sides SCAN for the same pattern on every scrape (our ``key_patterns`` entry does).
  Off by default: the default compares each exporter as people usually run it.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

import redis

from bench.harness import BenchEnv, BenchError, ExporterSpec, Plan, Scenario, Targets, log, stack_exporter_spec
from bench.scale import start_redis

REFERENCE = "/usr/bin/prometheus-redis-exporter"

SESSIONS = 100_000
USERS = 30_000
CACHE = 20_000
BATCH = 5_000  # commands per pipeline round trip: big enough that the load takes ~2 s

CONFIG = """\
redis:
  - name: bench
    url: redis://127.0.0.1:{port}/0
    key_patterns:
      - {{name: sessions, pattern: "session:*"}}
"""


def _load(client: redis.Redis, seed: int = 42) -> None:
    rng = random.Random(seed)  # same dataset on every run
    pipe = client.pipeline(transaction=False)
    queued = 0

    def flush_if_full() -> None:
        nonlocal queued
        queued += 1
        if queued >= BATCH:
            pipe.execute()
            queued = 0

    for _ in range(SESSIONS):
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        value = f'{{"uid":{rng.randrange(USERS)},"ip":"10.0.{rng.randrange(256)}.{rng.randrange(256)}"}}'
        pipe.set(f"session:{sid}", value, ex=rng.randrange(900, 86_400))
        flush_if_full()
    plans = ("free", "pro", "team", "enterprise")
    for n in range(USERS):
        pipe.hset(
            f"user:{n}",
            mapping={
                "name": f"user {n}",
                "email": f"user{n}@example.com",
                "plan": rng.choice(plans),
                "created": str(1_600_000_000 + rng.randrange(100_000_000)),
                "logins": str(rng.randrange(10_000)),
            },
        )
        flush_if_full()
    for n in range(CACHE):
        pipe.set(f"cache:{n}", rng.randbytes(rng.randrange(64, 513)))
        flush_if_full()
    pipe.execute()


def plan(env: BenchEnv) -> Plan:
    """The Redis scenario: a loaded redis-server, stack-exporter and redis_exporter on it.

    Long because the scenario's closures share the ports and paths chosen at the top;
    each closure is short.
    """
    redis_port = env.free_port()
    ours_port = env.free_port()
    theirs_port = env.free_port()
    config = env.workdir / "stack-exporter.yml"
    config.write_text(CONFIG.format(port=redis_port))

    theirs_argv = [
        REFERENCE,
        "--redis.addr",
        f"redis://127.0.0.1:{redis_port}",
        "--web.listen-address",
        f"127.0.0.1:{theirs_port}",
    ]
    if env.options.get("count_keys", "0") not in ("", "0", "false", "no"):
        theirs_argv.append("--count-keys=db0=session:*")

    def start_backend() -> Mapping[str, Any]:
        start_redis(env, "redis-server", redis_port)
        client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=30)
        try:
            t0 = time.monotonic()
            _load(client)
            load_s = time.monotonic() - t0
            keys = cast(int, client.dbsize())
            expected = SESSIONS + USERS + CACHE
            if keys != expected:
                raise BenchError(f"loaded {keys} keys into redis, expected {expected}")
            info = cast(dict[str, Any], client.info())
        finally:
            client.close()
        log(f"redis: {keys} keys loaded in {load_s:.1f}s")
        return {
            "redis_version": info.get("redis_version", "?"),
            "keys": keys,
            "sessions": SESSIONS,
            "users": USERS,
            "cache": CACHE,
            "used_memory_mib": round(int(info.get("used_memory", 0)) / 2**20, 1),
            "load_seconds": round(load_s, 2),
        }

    return Plan(
        ours=stack_exporter_spec(config, ours_port),
        theirs=ExporterSpec(
            name="redis_exporter",
            argv=theirs_argv,
            port=theirs_port,
            ready_path="/health",  # 1.45 has no /-/ready (its landing page answers any path)
            install_hint="apt-get install prometheus-redis-exporter",
            version_argv=[REFERENCE, "--version"],
        ),
        start_backend=start_backend,
    )


SCENARIO = Scenario(
    name="redis",
    title="Redis: stack-exporter vs prometheus-redis-exporter on one redis-server",
    plan=plan,
    # issue 16's goal for Redis: p50 at most 0.75x redis_exporter's in four runs of five
    targets=Targets(max_p50_ratio=0.75),
)

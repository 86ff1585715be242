"""Golden exposition: a deterministic subset of a fresh server's output, byte for byte.

It pins names, HELP texts, types, label order and number formatting, which the
value-level tests do not. Refresh after an intended change with
`UPDATE_GOLDEN=1 make pytest ARGS=tests/collectors/test_redis_golden.py` and review the diff.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.helpers import exporter, scrape
from tests.servers.redis import RedisServer

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "redis_subset.prom"

# Families whose values a fresh server with the settings below makes deterministic.
SUBSET = (
    "redis_up",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_memory_max_bytes",
    "redis_config_maxclients",
    "redis_connected_slaves",
    "redis_aof_enabled",
    "redis_rdb_last_bgsave_status",
    "redis_cluster_enabled",
    "redis_evicted_keys_total",
    "redis_keyspace_misses_total",
    "redis_key_group_keys",
    "redis_key_group_scan_complete",
)


def subset(text: str) -> str:
    keep = []
    for line in text.splitlines():
        name = line.split(" ")[2] if line.startswith("# ") else line.split("{")[0].split(" ")[0]
        if name in SUBSET:
            keep.append(line)
    return "\n".join(keep) + "\n"


async def test_golden_subset(tmp_path: Path) -> None:
    args = ["--maxmemory", "100mb", "--maxclients", "321"]
    with RedisServer(tmp_path / "golden", extra_args=args) as server:
        client = server.client()
        client.mset({f"session:{i}": "x" for i in range(5)})
        db3 = server.client(db=3)
        for i in range(2):
            db3.set(f"t:{i}", "x", ex=86400)
        db3.get("missing")  # one keyspace miss
        config = f"""
redis:
  - name: golden
    url: {server.url}
    key_patterns: [{{name: sessions, pattern: "session:*"}}]
"""
        async with exporter(config) as http:
            await scrape(http)
            for _ in range(100):
                text = await scrape(http)
                if "redis_key_group_keys{" in text:
                    break
                await asyncio.sleep(0.05)
    got = subset(text)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text()

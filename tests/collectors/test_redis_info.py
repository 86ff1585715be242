"""The Redis reply parsers on their own, without a server: INFO, its records, sentinel flags."""

from __future__ import annotations

from exporter.collectors.redis.info import (
    command_families,
    command_latency_families,
    info_families,
    num,
    parse_info,
    parse_info_sections,
    parse_record,
    replica_families,
)
from exporter.collectors.redis.sentinel import count_ok

INFO = """# Server\r
redis_version:7.2.4\r
redis_mode:standalone\r
\r
# Replication\r
role:master\r
slave0:ip=10.0.0.2,port=6380,state=online,offset=100,lag=1\r
slave1:ip=10.0.0.3,port=6380,state=wait_bgsave,offset=0,lag=0\r
# Commandstats\r
cmdstat_get:calls=42,usec=120,usec_per_call=2.86,rejected_calls=1,failed_calls=2\r
# Latencystats\r
latency_percentiles_usec_get:p50=1.003,p99.9=10.015\r
# Keyspace\r
db0:keys=150000,expires=3,avg_ttl=1234\r
not a field\r
"""


def test_sections_split_plain_fields_from_records() -> None:
    fields, records = parse_info_sections(INFO)
    assert fields["redis_version"] == "7.2.4"
    assert fields["slave1"] == "ip=10.0.0.3,port=6380,state=wait_bgsave,offset=0,lag=0"
    assert "cmdstat_get" not in fields and "db0" not in fields
    assert records["keyspace"] == [("db0", "keys=150000,expires=3,avg_ttl=1234")]
    assert [key for key, _ in records["commandstats"]] == ["cmdstat_get"]
    assert "replication" not in records
    assert parse_info(INFO) == fields


def test_record_and_number() -> None:
    assert parse_record("keys=1,expires=0,junk,avg_ttl=") == {"keys": "1", "expires": "0", "avg_ttl": ""}
    assert num("1.5") == 1.5
    assert num(None) is None
    assert num("ok") is None


def test_replicas_and_commands() -> None:
    fields, records = parse_info_sections(INFO)
    lag, offset = replica_families(fields)
    assert [(s.labels["slave_ip"], s.value) for s in lag.samples] == [("10.0.0.2", 1.0), ("10.0.0.3", 0.0)]
    assert offset.samples[0].value == 100.0
    families, totals = command_families(records)
    assert totals == {"get": (42.0, 120e-6)}
    assert [f.samples[0].value for f in families] == [42.0, 120e-6, 1.0, 2.0]


def test_latency_quantiles_are_written_without_float_noise() -> None:
    _, records = parse_info_sections(INFO)
    (summary,) = command_latency_families(records, {"get": (42.0, 120e-6)})
    quantiles = {s.labels.get("quantile"): s for s in summary.samples if s.name == summary.name}
    assert set(quantiles) == {"0.5", "0.999"}
    assert quantiles["0.999"].value == 10.015e-6
    assert command_latency_families({}, {}) == []


def test_info_families_describe_the_server() -> None:
    fields, records = parse_info_sections(INFO)
    families = {f.name: f for f in info_families(fields, records, "standalone")}
    inst = families["redis_instance_info"].samples[0]
    assert inst.labels["redis_version"] == "7.2.4"
    assert inst.labels["role"] == "master"
    assert "redis_slave_info" not in families  # a primary
    assert "redis_start_time_seconds" not in families  # no server_time_usec in this INFO


def test_count_ok_reads_parsed_and_raw_sentinel_replies() -> None:
    reply = [
        {"flags": "slave"},
        {"flags": "slave,s_down"},
        [b"name", b"a", b"flags", b"sentinel,disconnected"],
        [b"flags", b"sentinel"],
        "neither a dict nor a list",
    ]
    assert count_ok(reply) == 2
    assert count_ok(None) == 0

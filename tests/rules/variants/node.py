"""Hosts as a variant: the real node_exporter (Debian's 1.5) with the collectors it runs by default.

The capture scrapes the node_exporter the package installs, on this machine, with its default
collectors, as most hosts run it.  Its systemd collector is off by default, so
`node_systemd_unit_state` is not in the capture and NodeSystemdUnitFailed cannot fire on this
variant: docs/metrics/node.md says so, and names the flag (`--collector.systemd`).
rules/tests/node-test.yaml covers that alert with the collector's label set.

The series are stored as Prometheus would store them from a `job="node"` scrape (the pack's
default `node.selector`).  The healthy twin replaces what this machine happens to look like
(a container's clock that no NTP daemon disciplines, whatever its disk holds) with a healthy
host's figures, so the twin does not depend on the machine that runs the test.
NodeDown and NodeAbsent read Prometheus's own `up` of the node scrape, not a series of the
capture (test_variant_matrix.py's NOT_PER_VARIANT).
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from peers.process import LOOPBACK, Process, free_port, wait_until
from tests.rules.variants import (
    Change,
    Incident,
    Rule,
    Source,
    Variant,
    becomes,
    constant,
    grows,
    keeps_growing,
    stops,
)

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
# The labels of the pack's default node scrape (`node.selector`); WATCHED_JOBS's node job.
SCRAPE_LABELS = {"job": "node", "instance": "node:9100"}


def _scrape_node_exporter(log: Path) -> str:
    if not NODE_EXPORTER.exists():
        pytest.fail(f"{NODE_EXPORTER} missing: run make test-deps (package prometheus-node-exporter)")
    port = free_port()
    proc = Process([NODE_EXPORTER, f"--web.listen-address={LOOPBACK}:{port}"], log)
    proc.start()
    try:

        def scrape() -> str | None:
            proc.check_running()
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as resp:
                    return str(resp.read().decode())
            except OSError:
                return None

        text = wait_until(scrape, timeout=15, message="node_exporter /metrics")
        assert text is not None
        return text
    finally:
        proc.stop()


async def node_exporter(request: pytest.FixtureRequest) -> str:
    tmp = request.getfixturevalue("tmp_path")
    return await asyncio.to_thread(_scrape_node_exporter, tmp / "node_exporter.log")


# ------------------------------------------------------------------ a healthy host

GIB = 2**30
# Every filesystem 60% free of 100 GiB, with 90% of its inodes free.
SIZE = 100 * GIB
HEALTHY = (
    # four-fifths idle: 50 of every 60 CPU-seconds per CPU (NodeHighCPU reads idle, iowait, steal)
    Rule("node_cpu_seconds_total", grows(50), {"mode": "idle"}),
    Rule("node_cpu_seconds_total", grows(8), {"mode": "user"}),
    Rule("node_cpu_seconds_total", grows(2), {"mode": "system"}),
    Rule("node_memory_MemTotal_bytes", constant(16 * GIB)),
    Rule("node_memory_MemAvailable_bytes", constant(10 * GIB)),
    Rule("node_filesystem_size_bytes", constant(SIZE)),
    Rule("node_filesystem_avail_bytes", constant(0.6 * SIZE)),
    Rule("node_filesystem_files", constant(1_000_000)),
    Rule("node_filesystem_files_free", constant(900_000)),
    Rule("node_filesystem_readonly", constant(0)),
    # chrony keeps the clock within a millisecond
    Rule("node_timex_sync_status", constant(1)),
    Rule("node_timex_offset_seconds", constant(0.001)),
    Rule("node_timex_maxerror_seconds", constant(0.05)),
    # half a request in flight on average; traffic without errors
    Rule("node_disk_io_time_weighted_seconds_total", grows(30)),
    Rule("node_network_receive_packets_total", grows(1000)),
    Rule("node_network_transmit_packets_total", grows(1000)),
    Rule("node_nf_conntrack_entries_limit", constant(262_144)),
    Rule("node_nf_conntrack_entries", constant(2_000)),
    Rule("node_filefd_maximum", constant(1_000_000)),
    Rule("node_filefd_allocated", constant(2_000)),
)


# ------------------------------------------------------------------ incidents


def _filling(free_at_start: float, per_minute: float) -> Change:
    """Free space from `free_at_start` of the disk, falling by `per_minute` of it."""
    return Change("node_filesystem_avail_bytes", lambda _s, t, _start: SIZE * max(free_at_start - per_minute * t, 0))


INCIDENTS = (
    Incident(
        "the CPUs stay busy",
        "NodeHighCPU",
        "warning",
        (Change("node_cpu_seconds_total", stops(), {"mode": "idle"}),),
        # on a recorded series: one evaluation later than the `for`
        fires_within=30,
    ),
    Incident(
        "memory runs out",
        "NodeHighMemory",
        "warning",
        (Change("node_memory_MemAvailable_bytes", becomes(GIB)),),
        # on a recorded series: one evaluation later than the `for`
        fires_within=30,
    ),
    Incident(
        "a filesystem is under 10% free",
        "NodeFilesystemSpaceLow",
        "warning",
        (Change("node_filesystem_avail_bytes", becomes(0.08 * SIZE)),),
        fires_within=40,
    ),
    Incident(
        "a filesystem is under 5% free",
        "NodeFilesystemSpaceLow",
        "critical",
        (Change("node_filesystem_avail_bytes", becomes(0.03 * SIZE)),),
        fires_within=40,
    ),
    Incident(
        # 35% free, losing 1.5% an hour: full within a day
        "a filesystem fills up within a day",
        "NodeFilesystemFillingUp",
        "warning",
        (_filling(0.35, 0.015 / 60),),
        fires_within=75,
    ),
    Incident(
        # from 60% free, losing 15% an hour: under 20% after 160 minutes, full at 240
        "a filesystem fills up within hours",
        "NodeFilesystemFillingUp",
        "critical",
        (_filling(0.6, 0.15 / 60),),
        fires_within=235,
    ),
    Incident(
        "a filesystem runs out of inodes",
        "NodeFilesystemInodesLow",
        "warning",
        (Change("node_filesystem_files_free", becomes(30_000)),),
        fires_within=40,
    ),
    Incident(
        "a filesystem is remounted read-only",
        "NodeFilesystemReadOnly",
        "critical",
        (Change("node_filesystem_readonly", becomes(1)),),
        fires_within=10,
    ),
    Incident(
        "the kernel kills a process for lack of memory",
        "NodeOOMKill",
        "warning",
        (Change("node_vmstat_oom_kill", lambda _s, t, start: start + (1 if t >= 1 else 0)),),
        fires_within=3,
    ),
    Incident(
        # 50 errors a minute in each direction of 1000 packets: 5%
        "network interfaces have errors",
        "NodeNetworkErrors",
        "warning",
        (
            Change("node_network_receive_errs_total", keeps_growing(50)),
            Change("node_network_transmit_errs_total", keeps_growing(50)),
        ),
        fires_within=70,
    ),
    Incident(
        "the clock is off",
        "NodeClockSkew",
        "warning",
        (Change("node_timex_offset_seconds", becomes(0.3)),),
        fires_within=15,
    ),
    Incident(
        "the clock is not synchronised",
        "NodeClockNotSynchronising",
        "warning",
        (Change("node_timex_sync_status", becomes(0)), Change("node_timex_maxerror_seconds", becomes(16))),
        fires_within=20,
    ),
    Incident(
        # 15 requests in flight on average on every disk
        "a disk is saturated",
        "NodeDiskIOSaturated",
        "warning",
        (Change("node_disk_io_time_weighted_seconds_total", keeps_growing(900)),),
        fires_within=40,
    ),
    Incident(
        "the conntrack table fills up",
        "NodeConntrackTableFilling",
        "warning",
        (Change("node_nf_conntrack_entries", becomes(220_000)),),
        fires_within=10,
    ),
    Incident(
        "file handles run low",
        "NodeFileDescriptorsRunningOut",
        "warning",
        (Change("node_filefd_allocated", becomes(800_000)),),
        fires_within=20,
    ),
    Incident(
        "file handles run out",
        "NodeFileDescriptorsRunningOut",
        "critical",
        (Change("node_filefd_allocated", becomes(950_000)),),
        fires_within=20,
    ),
    Incident(
        "a systemd unit fails",
        "NodeSystemdUnitFailed",
        "warning",
        (Change("node_systemd_unit_state", becomes(1), {"state": "failed"}),),
        fires_within=10,
    ),
)

SOURCE = Source(
    name="node",
    docs="node",
    variants=(Variant("node", "node-exporter-1.5", node_exporter),),
    healthy=HEALTHY,
    incidents=INCIDENTS,
    scrape_labels=SCRAPE_LABELS,
)

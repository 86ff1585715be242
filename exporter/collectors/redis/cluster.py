"""Cluster mode: the CLUSTER INFO reply, which has INFO's shape, through its own table."""

from __future__ import annotations

from prometheus_client.core import Metric

from exporter.collectors.redis.info import STATUS_OK, Row, parse_info, table_families

CLUSTER_METRICS: tuple[Row, ...] = (
    ("cluster_state", "redis_cluster_state", "g", "1 if CLUSTER INFO reports the state ok.", STATUS_OK),
    (
        "cluster_slots_assigned",
        "redis_cluster_slots_assigned",
        "g",
        "Slots assigned to a node (16384 when complete).",
        1,
    ),
    ("cluster_slots_ok", "redis_cluster_slots_ok", "g", "Slots whose node is reachable.", 1),
    ("cluster_slots_pfail", "redis_cluster_slots_pfail", "g", "Slots whose node is possibly failing.", 1),
    ("cluster_slots_fail", "redis_cluster_slots_fail", "g", "Slots whose node has failed.", 1),
    ("cluster_known_nodes", "redis_cluster_known_nodes", "g", "Nodes known to this node.", 1),
    ("cluster_size", "redis_cluster_size", "g", "Primaries serving at least one slot.", 1),
    ("cluster_current_epoch", "redis_cluster_current_epoch", "g", "Current cluster epoch.", 1),
    ("cluster_my_epoch", "redis_cluster_my_epoch", "g", "This node's config epoch.", 1),
    ("cluster_stats_messages_sent", "redis_cluster_messages_sent", "c", "Cluster bus messages sent.", 1),
    ("cluster_stats_messages_received", "redis_cluster_messages_received", "c", "Cluster bus messages received.", 1),
)


def cluster_families(reply: str) -> list[Metric]:
    """Families from the text of CLUSTER INFO."""
    return table_families(CLUSTER_METRICS, parse_info(reply))

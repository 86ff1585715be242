"""The alerting pipeline's real processes; the implementation is peers.alerting.

``make demo`` runs the same classes, so it cannot drift from what the tests check.
"""

from peers.alerting import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_TEMPLATES,
    AMTOOL,
    RULES_GENERATED,
    Alertmanager,
    NodeExporter,
    Notification,
    ProcessError,
    Prometheus,
    StackExporter,
    WebhookSink,
    answers,
    check_running,
    cluster_position,
    duration_seconds,
    fast_rules,
    http_json,
    iter_alert_rules,
    sink_config,
)

__all__ = [
    "ALERTMANAGER_CONFIG",
    "ALERTMANAGER_TEMPLATES",
    "AMTOOL",
    "RULES_GENERATED",
    "Alertmanager",
    "NodeExporter",
    "Notification",
    "ProcessError",
    "Prometheus",
    "StackExporter",
    "WebhookSink",
    "answers",
    "check_running",
    "cluster_position",
    "duration_seconds",
    "fast_rules",
    "http_json",
    "iter_alert_rules",
    "sink_config",
]

"""The status-page providers the bridge can write to, by the name used in its config.

A third one (Better Stack, cState, a self-hosted page) is one more module shaped
like ``instatus.py`` and one more line here.
"""

from __future__ import annotations

from exporter.bridge.providers.base import (
    COMPONENT_STATUSES,
    ComponentStatus,
    HttpProvider,
    Provider,
    ProviderError,
    parse_retry_after,
)
from exporter.bridge.providers.instatus import InstatusProvider
from exporter.bridge.providers.statuspage import StatuspageProvider

PROVIDERS: dict[str, type[HttpProvider]] = {
    StatuspageProvider.name: StatuspageProvider,
    InstatusProvider.name: InstatusProvider,
}

__all__ = [
    "COMPONENT_STATUSES",
    "PROVIDERS",
    "ComponentStatus",
    "HttpProvider",
    "InstatusProvider",
    "Provider",
    "ProviderError",
    "StatuspageProvider",
    "parse_retry_after",
]

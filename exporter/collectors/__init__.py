"""The registration table: every source, its config section, collector and docs.

One row per source.  The config loader, the ``--collector.<name>`` flags, the
landing page and the metrics-reference test all read this table, so adding a
source means adding its module and one row here.  Modules are imported only
when their section is configured: an exporter watching only Redis never loads
asyncpg.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from exporter.collectors.base import Collector


@dataclass(frozen=True)
class SourceSpec:
    key: str  # config section, collector label value and flag name
    module: str  # module defining COLLECTOR (a Collector subclass)
    summary: str


SOURCES: dict[str, SourceSpec] = {
    spec.key: spec
    for spec in (
        SourceSpec("redis", "exporter.collectors.redis", "Redis servers, replicas, cluster nodes and sentinels"),
    )
}

# Sections that are one mapping of shared settings rather than a list of targets:
# key -> "module:ClassName".
SETTINGS: dict[str, str] = {}


@cache
def load_source(key: str) -> type[Collector[Any]]:
    module = importlib.import_module(SOURCES[key].module)
    collector: type[Collector[Any]] = module.COLLECTOR
    return collector


@cache
def load_settings_class(key: str) -> type[Any]:
    module_name, _, cls_name = SETTINGS[key].partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), cls_name)
    return cls

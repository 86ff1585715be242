"""The statuspage_bridge section: strict, every problem named by its key, secrets never printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from exporter.config import parse_config
from tests.helpers import ROOT, check_config, write_config

API_KEY = "sp-api-key-77c1d0e9b3a4"
TOKEN = "am-token-2b8e6f1c0d97"


def section(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "key").write_text(API_KEY + "\n")
    value: dict[str, Any] = {
        "token_file": "token",
        "provider": {"kind": "statuspage", "page_id": "kctbh9vrtdwd", "api_key_file": "key"},
        "components": [{"name": "Cache", "id": "8kbf7d35c070", "match": ['alertname="RedisDown"']}],
    }
    value.update(overrides)
    return value


def test_a_valid_section_with_its_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"statuspage_bridge": section(tmp_path)})
    config = parse_config(path.read_text(), base_dir=tmp_path)
    bridge = config.bridge
    assert bridge is not None
    assert bridge.provider.base_url() == "https://api.statuspage.io"
    assert float(bridge.min_flap_interval) == 300 and bridge.max_body_bytes == 1024 * 1024
    assert bridge.status_by_severity == {"critical": "major_outage", "warning": "degraded_performance", "info": "none"}
    assert not bridge.incidents.enabled
    assert {TOKEN, API_KEY} <= config.secrets()
    assert TOKEN not in repr(bridge) and API_KEY not in repr(bridge)
    proc = check_config(path)
    assert proc.returncode == 0, proc.stderr
    assert "status-page bridge with 1 component" in proc.stdout


def test_without_the_section_the_bridge_is_off() -> None:
    assert parse_config("redis: []\n").bridge is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"provider": {"kind": "statuspage", "page_id": "p1", "api_key_file": "key", "kindd": "x"}},
            ["statuspage_bridge.provider.kindd: unknown key"],
        ),
        (
            {"components": [{"name": "Cache", "id": "c1", "match": ['alertname="RedisDown"', "target=~cache(["]}]},
            ["statuspage_bridge.components[0].match[1]: invalid regex"],
        ),
        ({"token_file": None}, ["statuspage_bridge.token: missing required key: set token_file"]),
        ({"token_file": "nope"}, ["statuspage_bridge.token_file: cannot read"]),
        (
            {"provider": {"kind": "pagerduty", "page_id": "p/../x"}},
            [
                "statuspage_bridge.provider.kind: must be one of statuspage, instatus",
                "statuspage_bridge.provider.page_id: invalid id",
                "statuspage_bridge.provider.api_key: missing required key",
            ],
        ),
        (
            {"incidents": {"enabled": True, "title": "{component} on {instance}"}},
            ["statuspage_bridge.incidents.title: unknown placeholder {instance}"],
        ),
        (
            {"min_flap_interval": 300, "max_body_bytes": 0, "listen_address": "nowhere"},
            [
                "statuspage_bridge.min_flap_interval: expected a duration",
                "statuspage_bridge.max_body_bytes: must be greater than 0",
                "statuspage_bridge.listen_address: expected HOST:PORT",
            ],
        ),
        (
            {
                "components": [
                    {"name": "Cache", "id": "c1", "match": ['a="b"']},
                    {"name": "Cache", "id": "c1", "match": [], "status_by_severity": {"critical": "down"}},
                ]
            },
            [
                "statuspage_bridge.components[1].match: needs at least one matcher",
                "statuspage_bridge.components[1].status_by_severity.critical: must be one of none,",
            ],
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, change: dict[str, Any], expected: list[str]) -> None:
    value = section(tmp_path, **change)
    value = {k: v for k, v in value.items() if v is not None}
    path = write_config(tmp_path, {"statuspage_bridge": value})
    proc = check_config(path)
    assert proc.returncode == 1
    for problem in expected:
        assert problem in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout and API_KEY not in proc.stderr + proc.stdout


def test_duplicate_components_are_refused(tmp_path: Path) -> None:
    comps = [{"name": "Cache", "id": "c1", "match": ['a="b"']}, {"name": "Cache", "id": "c1", "match": ['a="c"']}]
    path = write_config(tmp_path, {"statuspage_bridge": section(tmp_path, components=comps)})
    proc = check_config(path)
    assert "statuspage_bridge.components[1].name: duplicate name 'Cache' (also components[0])" in proc.stderr
    assert "statuspage_bridge.components[1].id: duplicate id 'c1'" in proc.stderr


def test_the_example_config_shows_the_bridge(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "config.yml").read_text()
    for name in set(re.findall(r"/run/secrets/([\w.-]+)", text)):
        (tmp_path / name).write_text("example-secret\n")
    text = text.replace("/run/secrets/", f"{tmp_path}/")
    env = dict.fromkeys(re.findall(r"\$\{(\w+)\}", text), "example")
    config = parse_config(text, "examples/config.yml", base_dir=ROOT / "examples", env=env)
    assert config.bridge is not None
    assert config.bridge.incidents.enabled
    assert [c.name for c in config.bridge.components] == ["Cache", "Public API"]

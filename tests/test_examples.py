"""The shipped example config must stay valid as the schema evolves."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from exporter.config import parse_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_example_config_is_valid(tmp_path: Path) -> None:
    text = (EXAMPLES / "config.yml").read_text()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in set(re.findall(r"/run/secrets/([\w.-]+)", text)):
        (secrets / name).write_text("example-secret\n")
    text = text.replace("/run/secrets/", f"{secrets}/")
    shutil.copy(EXAMPLES / "queries.yaml", tmp_path / "queries.yaml")
    env = dict.fromkeys(re.findall(r"\$\{(\w+)\}", text), "example")
    config = parse_config(text, "examples/config.yml", base_dir=tmp_path, env=env)
    sections = set(config.sources) | set(config.settings)
    from exporter.collectors import SETTINGS, SOURCES

    assert sections == set(SOURCES) | set(SETTINGS), "examples/config.yml should show every section"
    assert config.bridge is not None, "examples/config.yml should show the status-page bridge"

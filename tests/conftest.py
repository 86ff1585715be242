"""Suite-wide pytest setup: fixtures that start real servers, and the promtool unit tests started early."""

import pytest

pytest_plugins = [
    "tests.servers.redis",
    "tests.servers.nsd",
    "tests.servers.https",
    "tests.servers.postgres",
    "tests.servers.directus",
]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the rule pack's promtool unit tests in the background (tests/rules/unit_tests.py)."""
    from tests.rules import unit_tests

    if session.config.option.collectonly:
        return
    selected = [
        item.callspec.params["test_file"]
        for item in session.items
        if getattr(item, "originalname", "") == "test_promtool_unit_tests" and hasattr(item, "callspec")
    ]
    unit_tests.start(selected)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the promtool runs not started yet (after -x or a Ctrl-C): exit waits for none of them."""
    from tests.rules import unit_tests

    unit_tests.cancel()

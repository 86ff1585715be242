"""Suite-wide pytest setup: fixtures that start real servers."""

pytest_plugins = ["tests.servers.redis"]

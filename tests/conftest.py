"""Suite-wide pytest setup: fixtures that start real servers."""

pytest_plugins = [
    "tests.servers.redis",
    "tests.servers.nsd",
    "tests.servers.https",
    "tests.servers.postgres",
    "tests.servers.directus",
]

"""Real servers on loopback for development: started by the tests, bench/ and ``make demo``.

Not part of the exporter's distribution (pyproject.toml packages only ``exporter``): this is
the project's own tooling, importable from the repository root (``python -m bench``,
``python -m scripts.demo``, pytest).
"""

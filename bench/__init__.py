"""Side-by-side benchmarks of stack-exporter against the reference exporters (not tests)."""

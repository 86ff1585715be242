"""Email providers: one module per provider, all exporting the same provider-neutral metrics."""

"""Small helpers the harness shares: one way to publish a file, one way to hash, one place for data."""

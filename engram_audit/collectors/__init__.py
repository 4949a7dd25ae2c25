"""Collectors: read-only gatherers of Azure, PostgreSQL and DSN state into the snapshot."""

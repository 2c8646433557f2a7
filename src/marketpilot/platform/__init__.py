"""Shared infrastructure: config, database, events, auth, monitoring."""

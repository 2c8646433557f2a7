"""Plain data: entities and event types. No I/O here."""

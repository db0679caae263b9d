"""The embedded sqlite driver: ``driver.SqliteDriver`` is the entry point."""

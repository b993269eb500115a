"""`planloop demo`: everything in one process on SQLite, and the demo team's story."""

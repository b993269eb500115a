"""Database models, engine and sessions, queries, migrations and the outbox."""

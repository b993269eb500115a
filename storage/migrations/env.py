"""Alembic environment: the engine comes from the caller (storage.db.upgrade), never from a URL here."""

from __future__ import annotations

from typing import Any

from alembic import context

from storage.models import Base, UtcDateTime


def render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # UtcDateTime only converts zones in Python; in the database it is a plain timestamptz.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can only ALTER via copy-and-move
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

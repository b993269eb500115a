"""Fresh, empty databases for tests that start processes of their own (serve, workers, electors)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import make_engine
from tests.conftest import PG_ADMIN_URL, _databases

KINDS = _databases()


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL (password included: a child process needs it), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'planloop.db'}"
        return
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"planloop_p_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL was asked for but does not answer at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def needs_postgres() -> None:
    if "postgresql" not in KINDS:
        pytest.skip("PLANLOOP_TEST_DB excludes PostgreSQL")

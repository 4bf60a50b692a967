"""URLs of open_store / open_bus, and the layering: the core never imports the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rxresponses.store import (
    InProcessEventBus,
    PostgresStore,
    RedisEventBus,
    SQLiteStore,
    open_bus,
    open_store,
)

pytestmark = pytest.mark.anyio


async def test_open_store_urls(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'a' / 'b.sqlite3'}", retention=5.0)
    assert isinstance(store, SQLiteStore)
    assert store.path == str(tmp_path / "a" / "b.sqlite3")
    assert store.retention == 5.0
    assert (tmp_path / "a" / "b.sqlite3").exists()
    await store.close()
    memory = await open_store("sqlite://:memory:")
    assert isinstance(memory, SQLiteStore)
    assert memory.path == ":memory:"
    await memory.close()
    with pytest.raises(ValueError, match="unknown store URL scheme: 'mysql'"):
        await open_store("mysql://x")
    assert isinstance(PostgresStore("postgresql://u@h/db"), PostgresStore)
    assert "secret" not in repr(PostgresStore("postgresql://u:secret@h/db"))


async def test_open_bus_urls() -> None:
    assert isinstance(open_bus(None), InProcessEventBus)
    bus = open_bus("redis://127.0.0.1:1/0")
    assert isinstance(bus, RedisEventBus)
    await bus.close()
    with pytest.raises(ValueError, match="unknown bus URL scheme: 'kafka'"):
        open_bus("kafka://x")


def test_the_core_does_not_import_the_store() -> None:
    code = (
        "import sys, rxresponses, rxresponses.types, rxresponses.operators, rxresponses.sinks;"
        "print(sorted(m for m in sys.modules if m.startswith(('rxresponses.store', 'psycopg',"
        " 'redis'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_store_imports_its_drivers_only_when_used() -> None:
    """``rxresponses serve`` with the SQLite default must work without the optional extras."""
    code = (
        "import sys, rxresponses.store;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool',"
        " 'redis')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"

"""The store a configuration names (``[store] url``)."""

from __future__ import annotations

from callfloor.config import StoreConfig
from callfloor.store.base import Store, StoreError
from callfloor.store.file import FileStore
from callfloor.store.memory import MemoryStore


def open_store(config: StoreConfig) -> Store:
    """A store for ``[store] url`` (not opened yet: ``await store.open()``)."""
    if config.kind == "file":
        assert config.path is not None
        return FileStore(config.path)
    if config.kind == "redis":
        raise StoreError(f"{config.url}: the redis store is not available in this build yet")
    return MemoryStore()

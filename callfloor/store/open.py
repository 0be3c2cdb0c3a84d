"""The store a configuration names (``[store] url``)."""

from __future__ import annotations

from collections.abc import Iterable

from callfloor.config import StoreConfig
from callfloor.store.base import Store
from callfloor.store.file import FileStore
from callfloor.store.memory import MemoryStore


def open_store(
    config: StoreConfig, *, sites: Iterable[str] = (), member: str | None = None
) -> Store:
    """A store for ``[store] url`` (not opened yet: ``await store.open()``).

    ``sites`` (the configured ones) and ``member`` (this process's id, unique per start;
    None: one is made up) matter to a ``redis://`` store only, which several processes
    share.
    """
    if config.kind == "file":
        assert config.path is not None
        return FileStore(config.path)
    if config.kind == "redis":
        from callfloor.store.redis import RedisStore

        return RedisStore(config, sites=sites, member=member)
    return MemoryStore()

"""Duplicate detection with bounded memory.

At-least-once transports redeliver. Event identities are kept in two generations
of sets: new identities go into the current one, and when the clock has moved one
window past the current generation's start (or it holds half the allowed
entries), the previous generation is dropped whole and the current one becomes
the previous. An identity is therefore remembered for at least one window and at
most two, memory stays bounded however long the process runs, and forgetting
costs nothing per event. A redelivery that arrives after its identity was
forgotten is not detected (the window is configurable).
"""

from __future__ import annotations

from typing import Any

Key = str | tuple[object, ...]


class Deduplicator:
    """Remembers event identities for at least ``window_s`` of time, at most ``max_entries``."""

    __slots__ = ("_rotate_at", "current", "max_entries", "previous", "window_s")

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.current: set[Key] = set()
        self.previous: set[Key] = set()
        self._rotate_at = float("-inf")

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def known(self, key: Key) -> bool:
        """Whether ``key`` is remembered (nothing is recorded)."""
        return key in self.current or key in self.previous

    def remember(self, key: Key, now: float) -> None:
        """Remember ``key`` (known not to be remembered yet) at time ``now``."""
        current = self.current
        if now >= self._rotate_at or 2 * len(current) >= self.max_entries:
            self.previous = current
            self.current = current = set()
            self._rotate_at = now + self.window_s
        current.add(key)

    def seen(self, key: Key, now: float) -> bool:
        """True if ``key`` was seen before; otherwise remember it and return False."""
        current = self.current
        if key in current or key in self.previous:
            return True
        if now >= self._rotate_at or 2 * len(current) >= self.max_entries:
            self.previous = current
            self.current = current = set()
            self._rotate_at = now + self.window_s
        current.add(key)
        return False

    def dump(self) -> dict[str, Any]:
        """Plain-data form for checkpoints."""
        return {
            "current": [k if isinstance(k, str) else list(k) for k in self.current],
            "previous": [k if isinstance(k, str) else list(k) for k in self.previous],
            "rotate_at": self._rotate_at,
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore from :meth:`dump` output."""
        self.current = {k if isinstance(k, str) else tuple(k) for k in data["current"]}
        self.previous = {k if isinstance(k, str) else tuple(k) for k in data["previous"]}
        self._rotate_at = float(data["rotate_at"])

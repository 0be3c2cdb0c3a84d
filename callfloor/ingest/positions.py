"""Where each feed source stands, kept in every checkpoint as its own named section.

A file source's position (inode, byte offset and a fingerprint of the file's first
bytes) and the state of its mapper (which calls wait, which queues each agent serves)
go into the checkpoint envelope's ``source_positions`` section, by source name. The
position saved is the one of the last batch the service *acknowledged* (appended to
the store and admitted): since a checkpoint is taken between ingest rounds, it covers
exactly what the checkpointed state has applied. A restart recovers the checkpoint and
the store log after it, and the source goes on from the saved position: lines read
again were logged already and carry the same deterministic ids, so the service
recognises them as resends (never applied twice); lines never logged are applied
once. Nothing is skipped, nothing repeated.

With several partitions each checkpoint holds the positions as they stood when it
was taken; recovery keeps, per source, the newest one (the highest ``seq``): every
acknowledged batch is in the store's log, so any acknowledged position is safe.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Final

import msgspec

from callfloor.processors.state import Section, register_section

if TYPE_CHECKING:
    from callfloor.service.writer import Writer


class SourcePosition(msgspec.Struct, frozen=True):
    """One source's acknowledged position (see the module docstring)."""

    kind: str
    seq: int  # acknowledgements so far (the newest of two positions has the higher)
    inode: int = 0  # file sources: the file read (st_ino), 0 for none
    device: int = 0  # and its st_dev
    offset: int = 0  # the first byte not yet acknowledged
    line: int = 1  # the line number there (for messages)
    mapper: bytes = b""  # the mapper's state there (MessagePack), b"": fresh
    # The file's fingerprint: a digest of its first ``head_size`` bytes (the first
    # ``min(offset, HEAD_BYTES)``, see callfloor.ingest.tail). An appended file keeps
    # it; a file rewritten from its start (copy-truncate) does not. 0 and b"" in
    # checkpoints written before it existed: the position is then trusted as it is.
    head_size: int = 0
    head_digest: bytes = b""


SOURCE_POSITIONS: Final[Section[dict[str, SourcePosition]]] = register_section(
    "source_positions", dict[str, SourcePosition], dict
)


class PositionBook:
    """The acknowledged positions of every source of a service, and what was restored."""

    def __init__(self) -> None:
        self.acked: dict[str, SourcePosition] = {}
        self.restored: dict[str, SourcePosition] = {}

    def save(self, _partition: str) -> dict[str, SourcePosition]:
        """The section's value for a checkpoint."""
        return dict(self.acked)

    def restore(self, _partition: str, value: dict[str, SourcePosition]) -> None:
        """Take a recovered checkpoint's positions (the newest per source wins)."""
        for name, pos in value.items():
            mine = self.restored.get(name)
            if mine is None or pos.seq > mine.seq:
                self.restored[name] = pos
                self.acked.setdefault(name, pos)
                if self.acked[name].seq < pos.seq:
                    self.acked[name] = pos

    def start(self, name: str) -> SourcePosition | None:
        """Where source ``name`` goes on from: its newest acknowledged or restored position."""
        return self.acked.get(name) or self.restored.get(name)

    def ack(self, name: str, position: SourcePosition) -> None:
        """Record an acknowledged batch's position."""
        self.acked[name] = position


_BOOKS: Final[weakref.WeakKeyDictionary[Writer, PositionBook]] = weakref.WeakKeyDictionary()


def book_of(writer: Writer) -> PositionBook:
    """The writer's position book, hooked into its checkpoints on first use.

    Called by source factories before the service recovers (the hook must be there
    when the checkpoint is read).
    """
    book = _BOOKS.get(writer)
    if book is None:
        book = _BOOKS[writer] = PositionBook()
        writer.add_section(SOURCE_POSITIONS, save=book.save, restore=book.restore)
    return book

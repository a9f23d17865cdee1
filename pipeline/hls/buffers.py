"""The bytes a download holds in memory: one reusable buffer per worker, never one per segment.

A worker receives a segment body into its :class:`SegmentBuffer`, decrypts it there in
place, writes it to the part directory and reuses the same memory for its next segment.
Memory so depends on the concurrency and the largest segment, not on the stream's length,
and the allocator is not asked for (and left to fragment) a fresh megabyte per segment.

The memory is an anonymous ``mmap``, not a ``bytearray``: the allocator never sees it, so
the blocks a buffer outgrows go straight back to the system (through ``malloc`` they stayed
in each worker thread's arena: ~3 MB a worker), and pages never written are not resident.

:class:`BufferPool` hands the buffers out and counts them, so the bound is checkable.
"""

from __future__ import annotations

import mmap
import threading

# AES-CBC decryption into the buffer itself needs room for one more block than the body
# (cryptography's ``update_into`` asks for ``len(data) + 15`` bytes).
SPARE_BYTES = 16
# Address space, not memory: a page of the mapping becomes resident only when a body is
# written to it. Reserving generously means a worker's buffer never grows for usual
# segments (0.2–4 MB); growing (a copy, and fresh pages faulted in) cost 0.05–0.1 s of CPU
# per 200 MB when the buffer started at 64 KiB and grew by steps.
MIN_CAPACITY = 4 << 20


class SegmentBuffer:
    """A growable byte buffer that keeps its memory between uses. Not thread-safe.

    Views of it (:meth:`view`, :meth:`writable`) are valid until the next :meth:`reset` or
    :meth:`append`; a caller that must keep bytes longer copies them.
    """

    def __init__(self, capacity: int = 0):
        self._buf = mmap.mmap(-1, max(capacity, MIN_CAPACITY))
        self._mv = memoryview(self._buf)
        self.size = 0
        self.grown = 0  # times the memory was replaced by a bigger block

    @property
    def capacity(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self.size = 0

    def append(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        end = self.size + n
        if end + SPARE_BYTES > len(self._buf):
            self._grow(end + SPARE_BYTES)
        self._mv[self.size:end] = chunk
        self.size = end

    def truncate(self, size: int) -> None:
        self.size = min(self.size, max(0, size))

    def view(self) -> memoryview:
        """The bytes received so far (no copy)."""
        return self._mv[:self.size]

    def writable(self) -> memoryview:
        """The whole memory from the first byte: the body plus at least ``SPARE_BYTES`` after it."""
        if self.size + SPARE_BYTES > len(self._buf):
            self._grow(self.size + SPARE_BYTES)
        return self._mv

    def _grow(self, needed: int) -> None:
        # Twice what is needed: only the pages written to are resident, so the spare half costs
        # address space, not memory.
        new = mmap.mmap(-1, max(2 * needed, MIN_CAPACITY))
        new_mv = memoryview(new)
        new_mv[:self.size] = self._mv[:self.size]
        # The old block is unmapped when its last view is gone (a caller may still hold one).
        self._buf, self._mv = new, new_mv
        self.grown += 1


class BufferPool:
    """At most ``limit`` buffers, one per worker; counts what it made (thread-safe)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"a buffer pool needs a limit of at least 1, got {limit}")
        self.limit = limit
        self._free: list[SegmentBuffer] = []
        self._all: list[SegmentBuffer] = []
        self._lock = threading.Lock()
        self.created = 0
        self.in_use = 0
        self.peak_in_use = 0

    def take(self) -> SegmentBuffer:
        """A free buffer, or a new one while fewer than ``limit`` exist.

        Raises:
          RuntimeError: ``limit`` buffers are already in use (a bug: one per worker).
        """
        with self._lock:
            if self._free:
                buf = self._free.pop()
            elif self.created < self.limit:
                buf = SegmentBuffer()
                self._all.append(buf)
                self.created += 1
            else:
                raise RuntimeError(f"all {self.limit} segment buffers are in use")
            self.in_use += 1
            self.peak_in_use = max(self.peak_in_use, self.in_use)
            return buf

    def give(self, buf: SegmentBuffer) -> None:
        buf.reset()
        with self._lock:
            self.in_use -= 1
            self._free.append(buf)

    def held_bytes(self) -> int:
        """Size of every buffer made so far (free or in use): the most they can hold resident."""
        with self._lock:
            return sum(b.capacity for b in self._all)


__all__ = ["BufferPool", "SegmentBuffer"]

"""A one-item mailbox between ROS callbacks and a worker: newer items replace older ones."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` overwrites (counting a drop), ``take`` waits for one.

    Callbacks never block and nothing queues: a slow consumer only ever sees the newest item.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0  # items replaced before anyone took them

    def put(self, item: T) -> None:
        """Store ``item``; an item nobody took yet is dropped."""
        with self._condition:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._condition.notify()

    def take(self, timeout_s: float | None = None) -> T | None:
        """The newest item (removing it), or None on timeout or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout_s)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        """Wake and release every waiting ``take``; later takes return None at once."""
        with self._condition:
            self._closed = True
            self._item = None
            self._condition.notify_all()

    def reopen(self) -> None:
        """Accept items again after ``close`` (the node was re-activated)."""
        with self._condition:
            self._closed = False
            self._item = None

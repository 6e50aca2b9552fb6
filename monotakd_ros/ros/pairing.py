"""Approximate-time pairing of Image and CameraInfo that keeps only the newest pair."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class PairingStats:
    """Counters a node reports in its diagnostics."""

    pairs: int = 0
    images_replaced: int = 0  # a newer image arrived before this one found its CameraInfo
    images_unmatched: int = 0  # no CameraInfo within the slop (counted when given up on)
    last_unmatched_offset_ns: int = 0  # CameraInfo stamp - image stamp when last given up on


class LatestPairer:
    """Pairs each image with the CameraInfo closest in stamp within ``slop_s``.

    Only the newest image waits for its partner; an older waiting image is dropped, so a slow
    consumer never builds a queue. CameraInfo messages are kept in a short history because some
    drivers stamp them a few nanoseconds away from, or slightly after, the image.
    """

    def __init__(self, slop_s: float = 0.02, info_history: int = 8) -> None:
        self.slop_ns = int(round(slop_s * 1e9))
        self._infos: deque[tuple[int, Any]] = deque(maxlen=info_history)
        self._pending_image: tuple[int, Any] | None = None
        self.stats = PairingStats()

    def add_image(self, image: Any) -> tuple[Any, Any] | None:
        """Offer an image; returns (image, camera_info) when it pairs now."""
        stamp = stamp_to_ns(image.header.stamp)
        info = self._closest_info(stamp)
        if info is not None:
            if self._pending_image is not None and self._pending_image[0] <= stamp:
                self.stats.images_replaced += 1
                self._pending_image = None
            self.stats.pairs += 1
            return image, info
        if self._pending_image is not None:
            self.stats.images_replaced += 1
        self._pending_image = (stamp, image)
        return None

    def add_camera_info(self, info: Any) -> tuple[Any, Any] | None:
        """Offer a CameraInfo; returns (image, camera_info) when the waiting image pairs now."""
        stamp = stamp_to_ns(info.header.stamp)
        self._infos.append((stamp, info))
        if self._pending_image is None:
            return None
        image_stamp, image = self._pending_image
        if abs(stamp - image_stamp) <= self.slop_ns:
            self._pending_image = None
            self.stats.pairs += 1
            return image, info
        if stamp - image_stamp > self.slop_ns:
            # CameraInfo has moved past the image: it will never pair.
            self._pending_image = None
            self.stats.images_unmatched += 1
            self.stats.last_unmatched_offset_ns = stamp - image_stamp
        return None

    def _closest_info(self, stamp: int) -> Any | None:
        best, best_dt = None, self.slop_ns + 1
        for info_stamp, info in self._infos:
            dt = abs(info_stamp - stamp)
            if dt < best_dt:
                best, best_dt = info, dt
        return best

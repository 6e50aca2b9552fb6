"""Pairing of live Image, CameraInfo and PointCloud2 messages by header stamp, within a slop.

Unlike ``pairing.LatestPairer`` (the detector's newest-frame-only policy), a distiller wants every
frame it can complete: each image waits until a CameraInfo and a point cloud within ``slop_s``
have arrived, and is given up (and counted) once newer messages show that its partner will not
come. Works on any message with ``header.stamp`` (rclpy or rosbags), so it is tested without DDS.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from monotakd_ros.ros.pairing import stamp_to_ns

PARTNERS = ("camera_info", "point_cloud")


@dataclass
class SyncedFrame:
    """An image with its CameraInfo and point cloud (messages as received)."""

    stamp_ns: int
    image: Any
    camera_info: Any
    point_cloud: Any


class SensorFrameSync:
    """Complete image + CameraInfo + point cloud triples; ``skipped`` counts the rest by reason.

    An image is given up when a message of every partner stream newer than its stamp + slop has
    arrived without a match (reason ``no_camera_info`` / ``no_point_cloud``), or when more than
    ``max_waiting`` images wait (``no_partner_in_time``).
    """

    def __init__(self, slop_s: float = 0.05, max_waiting: int = 10, history: int = 50) -> None:
        if slop_s < 0 or max_waiting < 1 or history < 1:
            raise ValueError(f"slop_s >= 0, max_waiting >= 1 and history >= 1 required, got "
                             f"{slop_s}, {max_waiting}, {history}")
        self.slop_ns = int(round(slop_s * 1e9))
        self.max_waiting = max_waiting
        self._images: deque[tuple[int, Any]] = deque()
        self._partners: dict[str, deque[tuple[int, Any]]] = {
            kind: deque(maxlen=history) for kind in PARTNERS}
        self._newest_ns: dict[str, int | None] = dict.fromkeys(PARTNERS)
        self.skipped: Counter[str] = Counter()
        self.paired = 0

    def add_image(self, message: Any) -> list[SyncedFrame]:
        """Offer an image; returns the frames completed now (oldest first)."""
        self._images.append((stamp_to_ns(message.header.stamp), message))
        while len(self._images) > self.max_waiting:
            self._images.popleft()
            self.skipped["no_partner_in_time"] += 1
        return self._settle()

    def add_camera_info(self, message: Any) -> list[SyncedFrame]:
        """Offer a CameraInfo; returns the frames completed now."""
        return self._add_partner("camera_info", message)

    def add_point_cloud(self, message: Any) -> list[SyncedFrame]:
        """Offer a point cloud; returns the frames completed now."""
        return self._add_partner("point_cloud", message)

    @property
    def waiting(self) -> int:
        """Images still waiting for a partner."""
        return len(self._images)

    def _add_partner(self, kind: str, message: Any) -> list[SyncedFrame]:
        stamp_ns = stamp_to_ns(message.header.stamp)
        self._partners[kind].append((stamp_ns, message))
        newest = self._newest_ns[kind]
        self._newest_ns[kind] = stamp_ns if newest is None else max(newest, stamp_ns)
        return self._settle()

    def _nearest(self, kind: str, stamp_ns: int) -> Any | None:
        best, best_dt = None, self.slop_ns + 1
        for partner_ns, message in self._partners[kind]:
            dt = abs(partner_ns - stamp_ns)
            if dt < best_dt:
                best, best_dt = message, dt
        return best

    def _hopeless(self, kind: str, stamp_ns: int) -> bool:
        """A newer message of ``kind`` passed the image's window: no partner will come."""
        newest = self._newest_ns[kind]
        return newest is not None and newest > stamp_ns + self.slop_ns

    def _settle(self) -> list[SyncedFrame]:
        done: list[SyncedFrame] = []
        kept: deque[tuple[int, Any]] = deque()
        for stamp_ns, image in self._images:
            info = self._nearest("camera_info", stamp_ns)
            cloud = self._nearest("point_cloud", stamp_ns)
            if info is not None and cloud is not None:
                self.paired += 1
                done.append(SyncedFrame(stamp_ns, image, info, cloud))
            elif info is None and self._hopeless("camera_info", stamp_ns):
                self.skipped["no_camera_info"] += 1
            elif cloud is None and self._hopeless("point_cloud", stamp_ns):
                self.skipped["no_point_cloud"] += 1
            else:
                kept.append((stamp_ns, image))
        self._images = kept
        return done

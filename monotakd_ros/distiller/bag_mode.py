"""Bag mode: read KITTI-style bags at full speed through ``iter_bag_frames`` into the engine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader
from tqdm import tqdm

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.failures import bag_failures
from monotakd_ros.bags.frame_reader import BagFrameReader, iter_bag_frames
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.data.kitti.calib import read_object_calib
from monotakd_ros.data.kitti.raw_calib import read_raw_calib
from monotakd_ros.distiller.engine import DistillEngine
from monotakd_ros.errors import BagError, CalibrationError, MonotakdError
from monotakd_ros.geometry.calib import CameraCalib

LOG = logging.getLogger(__name__)
ProgressCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]
CAMERA_INDEX = 2  # the left colour camera, whose images kitti2bag publishes
_TOPICS_ONLY = CameraCalib.from_projection(np.eye(3, 4))  # never used for a frame


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """Raised between two frames when the caller asked bag reading to stop (e.g. SIGTERM)."""


def calib_from_file(path: Path) -> CameraCalib:
    """LiDAR -> camera calibration from a KITTI object calib file or a raw date folder."""
    path = Path(path)
    try:
        if path.is_dir():
            return read_raw_calib(path).camera_calib(CAMERA_INDEX)
        if path.is_file():
            return read_object_calib(path).camera_calib()
    except MonotakdError as err:
        raise CalibrationError(f"calib_file {path}: unusable calibration ({err})") from err
    raise CalibrationError(f"calib_file {path}: no such file or folder (give a KITTI object "
                           "calib .txt or a raw date folder holding calib_velo_to_cam.txt)")


def topic_overrides(image_topic: str, camera_info_topic: str, point_cloud_topic: str
                    ) -> dict[str, str | None]:
    """Reader topic arguments: None keeps the reader's kitti2bag default and type fallback."""
    chosen = {"image_topic": (image_topic, layout.IMAGE_TOPIC),
              "camera_info_topic": (camera_info_topic, layout.CAMERA_INFO_TOPIC),
              "point_cloud_topic": (point_cloud_topic, layout.POINT_CLOUD_TOPIC)}
    return {key: (None if value == default else value) for key, (value, default) in
            chosen.items()}


def source_name(bag: Path) -> str:
    """The ledger's name of a bag: its absolute path."""
    return str(Path(bag).resolve())


def check_bags(bags: Sequence[Path], slop_s: float, calib: CameraCalib | None,
               topics: dict[str, str | None]) -> int:
    """Open every bag once so bad ones fail before any work; returns their image count."""
    images = 0
    for bag in bags:
        found = recorded_topics(bag)
        # The sensor topics first (with a stand-in calibration the reader needs no /tf_static).
        with iter_bag_frames(bag, slop_s, calib or _TOPICS_ONLY, **topics) as reader:
            images += found.get(reader.image_topic, 0)
        if calib is None and layout.TF_STATIC_TOPIC not in found:
            raise BagError(f"{bag}: no {layout.TF_STATIC_TOPIC} topic to take the LiDAR -> "
                           "camera extrinsic from; set calib_file (--calib-file) to a KITTI "
                           "object calib file or a raw date folder; topics found: "
                           + ", ".join(sorted(found)))
    return images


def recorded_topics(bag: Path) -> dict[str, int]:
    """Topic -> message count, from the bag's index."""
    with bag_failures(bag, "open bag"), AnyReader(
            [Path(bag)], default_typestore=monotakd_typestore()) as reader:
        return {name: int(info.msgcount) for name, info in reader.topics.items()}


class _Throttle:
    """Calls ``callback`` at most every ``period_s`` seconds (and on ``force``)."""

    def __init__(self, callback: ProgressCallback | None, period_s: float) -> None:
        self.callback = callback
        self.period_s = period_s
        self._last = time.monotonic()

    def __call__(self, engine: DistillEngine, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is not None and (force or now - self._last >= self.period_s):
            self._last = now
            self.callback(engine.report())


def distill_bags(engine: DistillEngine, bags: Sequence[Path], passes: int, slop_s: float,
                 calib: CameraCalib | None, topics: dict[str, str | None],
                 on_progress: ProgressCallback | None = None, progress_period_s: float = 2.0,
                 show_bar: bool = True, total_images: int = 0,
                 should_stop: StopCheck | None = None) -> None:
    """Offer every frame of every bag, ``passes`` times, skipping what a resume already did.

    ``should_stop`` is asked after every frame; when it answers True, StopRequested is raised
    at that frame boundary (the engine's state is then consistent and can be saved).
    """
    throttle = _Throttle(on_progress, progress_period_s)
    bar = tqdm(total=total_images * passes or None, unit="frame", desc="distill",
               disable=not show_bar, dynamic_ncols=True)
    try:
        while True:
            for bag in bags:
                source = source_name(bag)
                if engine.ledger.is_finished(source):
                    continue
                with iter_bag_frames(bag, slop_s, calib, **topics) as reader:
                    _offer_all(engine, source, reader, bar, throttle, should_stop)
                if engine.finished:
                    return
                engine.finish_source(source, reader.skipped)
            if engine.ledger.pass_index + 1 >= passes:
                return
            engine.start_next_pass()
    finally:
        throttle(engine, force=True)
        bar.close()


def _offer_all(engine: DistillEngine, source: str, reader: BagFrameReader, bar: tqdm,
               throttle: _Throttle, should_stop: StopCheck | None) -> None:
    engine.source_skips = reader.skipped
    seen = 0
    for frame in reader:
        engine.offer(source, frame)
        if engine.finished:
            break
        # Frames read so far = yielded + skipped by the reader (its counters grow as it goes).
        read = reader.num_frames + sum(reader.skipped.values())
        bar.update(read - seen)
        seen = read
        if engine.last_losses:
            bar.set_postfix(step=engine.step, loss=f"{engine.last_losses['total']:.4f}",
                            refresh=False)
        throttle(engine)
        if should_stop is not None and should_stop():
            raise StopRequested(f"stop requested at step {engine.step}")

"""A synthetic KITTI raw drive: one world, the ego moving through it at 10 Hz, and tracklets.

Consecutive frames share the world: parked cars stay put, traffic drives along its lanes and
pedestrians walk their tracks, all while the ego drives on, so the frames are consistent in time
the way a real drive is. After the last frame ``SynthDrive.tracklets()`` turns what the frames
labelled into KITTI tracklets (bottom-centre poses in the LiDAR frame).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from monotakd_ros.data.kitti.tracklets import Tracklet
from monotakd_ros.data.synth.actors import Actor
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.generator import (
    MAX_OBJECT_FRAMES,
    SynthFrame,
    frame_rng,
    render_frame,
    scene_key,
)
from monotakd_ros.data.synth.motion import oxts_packet, sample_ego_motion
from monotakd_ros.data.synth.rig import RigPose
from monotakd_ros.data.synth.scene import sample_world

FRAME_PERIOD_NS = 100_000_000  # 10 Hz
# 2011-09-26 13:02:25 UTC, when KITTI's first raw drives were recorded.
DRIVE_START_NS = 1_317_042_145_000_000_000
_VELODYNE_LEAD_NS = 1_500_000  # the sweep passes the camera's view slightly before the trigger
_DRIVE_STREAM = MAX_OBJECT_FRAMES  # drive streams start where object-frame streams end
_FRAMES_PER_DRIVE_STREAM = 1_000_000


def _bottom_pose_lidar(actor: Actor, frame: SynthFrame) -> np.ndarray:
    """(6,) tracklet pose: bottom centre and yaw of an actor in the frame's LiDAR frame."""
    x, y, yaw = actor.pose_at(frame.time_s)
    pose = frame.pose
    R = pose.R_world_from_lidar
    bottom = R.T @ (np.array([x, y, actor.z_m]) - pose.position)
    heading = R.T @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
    return np.array([*bottom, 0.0, 0.0, np.arctan2(heading[1], heading[0])])


class SynthDrive(Iterator[SynthFrame]):
    """Iterates over the frames of one drive; ``tracklets()`` is complete after the last one."""

    def __init__(self, seed: int, num_frames: int, config: SynthConfig | None = None,
                 drive: int = 0) -> None:
        self.config = SynthConfig() if config is None else config
        self.seed, self.drive, self.num_frames = int(seed), int(drive), int(num_frames)
        rng = frame_rng(seed, _DRIVE_STREAM + drive)
        duration_s = num_frames * FRAME_PERIOD_NS * 1e-9
        self.world = sample_world(rng, self.config, duration_s=duration_s)
        lane_y = self.world.layout.lanes[0].y_m
        self.motion = sample_ego_motion(rng, self.world.ego_speed_mps, lane_y,
                                        self.config.lidar.height_m)
        self._start_ns = DRIVE_START_NS + drive * 3_600_000_000_000 + int(
            rng.integers(0, 600)) * 1_000_000_000
        self._index = 0
        # Per actor: list of (frame index, pose (6,), truncation state, occlusion state).
        self._tracks: dict[int, list[tuple[int, np.ndarray, int, int]]] = {}

    def __iter__(self) -> SynthDrive:
        """The drive is its own iterator."""
        return self

    def __len__(self) -> int:
        """Number of frames of the drive."""
        return self.num_frames

    def pose(self, index: int) -> RigPose:
        """LiDAR pose at frame ``index``."""
        return self.motion.pose(index * FRAME_PERIOD_NS * 1e-9)

    def __next__(self) -> SynthFrame:
        """Render the next frame."""
        if self._index >= self.num_frames:
            raise StopIteration
        index = self._index
        time_s = index * FRAME_PERIOD_NS * 1e-9
        rng = frame_rng(self.seed, _frame_stream(self.drive, index))
        frame = render_frame(self.world, self.motion.pose(time_s), time_s, self.config, rng)
        frame.oxts = oxts_packet(self.motion, time_s, rng)
        jitter = int(rng.integers(-300_000, 300_000))
        frame.image_stamp_ns = self._start_ns + index * FRAME_PERIOD_NS + jitter
        frame.velodyne_stamp_ns = frame.image_stamp_ns - _VELODYNE_LEAD_NS + int(
            rng.integers(-200_000, 200_000))
        self._record_tracks(index, frame)
        self._index += 1
        return frame

    def _record_tracks(self, index: int, frame: SynthFrame) -> None:
        for label in frame.actor_labels:
            if label.name == "DontCare":
                continue
            actor = self.world.actors[label.actor]
            pose = _bottom_pose_lidar(actor, frame)
            truncation = 0 if label.truncation < 0.05 else 1
            occlusion = {0: 0, 1: 1, 2: 1, 3: 2}[label.occlusion]
            self._tracks.setdefault(label.actor, []).append((index, pose, truncation, occlusion))

    def tracklets(self) -> list[Tracklet]:
        """One tracklet per run of consecutive frames in which an actor was labelled."""
        tracklets = []
        for actor_index in sorted(self._tracks):
            actor = self.world.actors[actor_index]
            records = self._tracks[actor_index]
            runs: list[list[tuple[int, np.ndarray, int, int]]] = [[records[0]]]
            for record in records[1:]:
                if record[0] == runs[-1][-1][0] + 1:
                    runs[-1].append(record)
                else:
                    runs.append([record])
            for run in runs:
                tracklets.append(Tracklet(
                    object_type=actor.kind, h=actor.height_m, w=actor.width_m,
                    l=actor.length_m, first_frame=run[0][0],
                    poses=np.stack([r[1] for r in run]),
                    truncation=np.array([r[2] for r in run]),
                    occlusion=np.array([r[3] for r in run])))
        return tracklets


def _frame_stream(drive: int, index: int) -> int:
    """Random stream of frame ``index`` of drive ``drive`` (beyond every object stream)."""
    return (_DRIVE_STREAM + drive) * _FRAMES_PER_DRIVE_STREAM + index


def drive_scene_keys(seed: int, drive: int, num_frames: int) -> set[tuple[int, int]]:
    """Every random-stream key drive ``drive`` of dataset ``seed`` draws from (world, frames)."""
    keys = {scene_key(seed, _DRIVE_STREAM + drive)}
    keys.update(scene_key(seed, _frame_stream(drive, i)) for i in range(num_frames))
    return keys


def generate_drive(seed: int, num_frames: int, config: SynthConfig | None = None,
                   drive: int = 0) -> SynthDrive:
    """The frames of drive ``drive`` of dataset ``seed`` (iterate; then call ``tracklets()``)."""
    return SynthDrive(seed, num_frames, config, drive)


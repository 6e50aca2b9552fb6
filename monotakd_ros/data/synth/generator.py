"""One synthetic KITTI frame: image, LiDAR sweep, calibration, labels and ground plane."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.labels import ActorLabel, kitti_labels, label_actors
from monotakd_ros.data.synth.lidar import HIT_GROUND, LidarConfig, LidarModel, cast_sweep
from monotakd_ros.data.synth.projection import CameraView
from monotakd_ros.data.synth.render import render_camera
from monotakd_ros.data.synth.rig import (
    RigPose,
    T_rect_from_world,
    ground_plane_rect,
)
from monotakd_ros.data.synth.scene import World, sample_world
from monotakd_ros.errors import DatasetError
from monotakd_ros.geometry.calib import CameraCalib

# Rig attitude: KITTI's object-set ground planes put the camera about 1.1 deg nose-down, which
# with KITTI's own LiDAR-to-camera rotation means the LiDAR pitches ~1.75 deg nose-down.
RIG_PITCH_DEG = (1.75, 0.5)  # mean, std
RIG_ROLL_DEG = (0.0, 0.4)


@dataclass
class SynthFrame:
    """A generated frame in KITTI terms, plus the ground truth the generator knows."""

    image_bgr: np.ndarray  # (H, W, 3) uint8
    points: np.ndarray  # (N, 4) float32 x y z intensity, LiDAR frame
    calib: CameraCalib
    labels: KittiLabels
    plane: np.ndarray  # (4,) ground plane a b c d in the rectified frame
    id_buffer: np.ndarray  # (H, W) uint16 actor index + 1 per pixel, 0 for the background
    point_actor: np.ndarray  # (N,) actor index hit by each point, -1 for clutter and ground
    actor_labels: list[ActorLabel]
    pose: RigPose
    time_s: float = 0.0
    oxts: OxtsPacket | None = None
    image_stamp_ns: int | None = None
    velodyne_stamp_ns: int | None = None


@lru_cache(maxsize=4)
def lidar_model(config: LidarConfig) -> LidarModel:
    """The (cached) ray layout of a LiDAR configuration."""
    return LidarModel(config)


MAX_OBJECT_FRAMES = 1_000_003  # object streams stay below the raw drives' (drive.py)


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """Independent random stream of frame ``index`` of dataset ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(list(scene_key(seed, index))))


def scene_key(seed: int, stream: int) -> tuple[int, int]:
    """The entropy of a random stream: object frame ``stream`` or a drive's world/frame."""
    return int(seed), int(stream)


def sample_rig_pose(rng: np.random.Generator, config: SynthConfig) -> RigPose:
    """The ego's LiDAR at the start of its lane, with small yaw, pitch and roll."""
    return RigPose(
        x_m=0.0, y_m=float(rng.normal(0.0, 0.25)),
        z_m=config.lidar.height_m + float(rng.normal(0.0, 0.02)),
        yaw_rad=float(np.deg2rad(rng.normal(0.0, 1.5))),
        pitch_rad=float(np.deg2rad(rng.normal(*RIG_PITCH_DEG))),
        roll_rad=float(np.deg2rad(rng.normal(*RIG_ROLL_DEG))),
    )


def render_frame(world: World, pose: RigPose, time_s: float, config: SynthConfig,
                 rng: np.random.Generator, calib: CameraCalib | None = None) -> SynthFrame:
    """Camera image, LiDAR sweep and labels of ``world`` seen from ``pose`` at ``time_s``."""
    calib = config.camera_calib() if calib is None else calib
    prims = world.primitives_at(time_s)
    T_rect_from_W = T_rect_from_world(calib, pose)
    view = CameraView(prims, calib, T_rect_from_W, config.image_hw)
    image, ids = render_camera(view, world.lighting, config.image_noise, rng)
    sweep = cast_sweep(prims, pose, lidar_model(config.lidar), world.layout.ground_reflectivity,
                       rng)
    point_actor = np.full(len(sweep.points), -1, dtype=np.int64)
    on_group = sweep.group != HIT_GROUND
    point_actor[on_group] = prims.group_actor[sweep.group[on_group]]
    lidar_points = np.bincount(point_actor[point_actor >= 0], minlength=len(world.actors))
    actor_labels = label_actors(view, world.actors, time_s, ids, lidar_points, T_rect_from_W,
                                config.max_label_distance_m, config.min_box_height_px)
    return SynthFrame(
        image_bgr=image, points=sweep.points, calib=calib, labels=kitti_labels(actor_labels),
        plane=ground_plane_rect(T_rect_from_W), id_buffer=ids, point_actor=point_actor,
        actor_labels=actor_labels, pose=pose, time_s=time_s,
    )


def generate_object_frame(seed: int, index: int, config: SynthConfig | None = None,
                          ) -> SynthFrame:
    """Frame ``index`` of the object dataset ``seed``: a fresh world seen by a parked rig."""
    config = SynthConfig() if config is None else config
    if not 0 <= index < MAX_OBJECT_FRAMES:
        raise DatasetError(f"object frame index {index}: must lie in [0, {MAX_OBJECT_FRAMES}) "
                           "so that no object scene shares a random stream with a raw drive")
    rng = frame_rng(seed, index)
    world = sample_world(rng, config)
    pose = sample_rig_pose(rng, config)
    return render_frame(world, pose, 0.0, config, rng)

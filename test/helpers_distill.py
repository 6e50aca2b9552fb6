"""Shared fixtures of the distiller tests: tiny frozen models and small KITTI-style bags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from helpers_kitti_raw import kitti_camera_calib
from rosbags.rosbag2 import Writer
from training_fixtures import TINY_MODEL, kitti_calib, write_yaml

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.frame_messages import (
    camera_info_message,
    image_message,
    point_cloud_message,
    tf_message,
    transform_stamped_message,
)
from monotakd_ros.bags.typestore import monotakd_typestore
from monotakd_ros.configuration import load_yaml_mapping
from monotakd_ros.data.kitti.calib import raw_calib_from_camera_calib
from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter
from monotakd_ros.data.kitti.tracklets import Tracklet
from monotakd_ros.distiller.run_config import (
    NODE_NAME,
    DistillerConfig,
    distiller_config_from_values,
)
from monotakd_ros.errors import ConfigError
from monotakd_ros.model_io.checkpoint import save_checkpoint
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.stages import build_stage

IMAGE = layout.IMAGE_TOPIC
INFO = layout.CAMERA_INFO_TOPIC
CLOUD = layout.POINT_CLOUD_TOPIC
FIRST_NS = 1_317_042_145_964_389_445
PERIOD_NS = 100_000_000
FULL_HW = (375, 1242)


def write_models(root: Path) -> dict[str, Path]:
    """Tiny model YAML, a teacher whose scores reach the response terms, a TA and a student."""
    root.mkdir(parents=True, exist_ok=True)
    model_yaml = write_yaml(root / "model.yaml", TINY_MODEL)
    model_cfg = load_model_config(model_yaml)
    spec = input_spec_for(model_cfg)
    seed_everything(5)
    paths = {"model_config": model_yaml}
    for name in ("teacher", "ta", "student"):
        stage = build_stage(name, model_cfg, spec, TrainConfig().detection,
                            TrainConfig().distill_config(), paths.get("teacher"), paths.get("ta"))
        if name == "teacher":
            # A fresh head scores every anchor at 0.01, below the response threshold of 0.1.
            torch.nn.init.normal_(stage.model.head.cls.bias, 0.0, 1.5)
        paths[name] = save_checkpoint(root / name, stage.model, stage.checkpoint_meta(0, 0))
    return paths


def distiller_config(models: dict[str, Path], out_dir: Path, bags: list[Path],
                     **values: object) -> DistillerConfig:
    """A CPU config for the tiny models; ``train`` values merge into the defaults."""
    train = {"device": "cpu", "batch_size": 1, "lr": 1e-3, "ckpt_interval": 0,
             "log_interval": 0, **values.pop("train", {})}  # type: ignore[dict-item]
    data = {"out_dir": str(out_dir), "teacher": str(models["teacher"]),
            "assistant": str(models["ta"]), "bags": [str(b) for b in bags], "train": train,
            **values}
    return distiller_config_from_values(data)


def bag_frames(count: int, seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(stamp_ns, image, points) of small random frames at 10 Hz."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        image = rng.integers(0, 256, (62, 207, 3), dtype=np.uint8)
        xyz = rng.uniform([2.0, -20.0, -2.0], [40.0, 20.0, 0.5], size=(400, 3))
        points = np.hstack([xyz, rng.uniform(0, 1, (400, 1))]).astype(np.float32)
        frames.append((FIRST_NS + index * PERIOD_NS, image, points))
    return frames


def write_bag(path: Path, frames: list[tuple[int, np.ndarray, np.ndarray]],
              topics: tuple[str, ...] = (IMAGE, INFO, CLOUD, layout.TF_STATIC_TOPIC),
              cloud_offsets_ns: dict[int, int] | None = None,
              corrupt_images: tuple[int, ...] = ()) -> Path:
    """A kitti2bag-layout rosbag2 of ``frames``; chosen clouds moved in time, images damaged."""
    store = monotakd_typestore()
    camera = kitti_camera_calib()
    cloud_offsets_ns = cloud_offsets_ns or {}
    types = {IMAGE: "sensor_msgs/msg/Image", INFO: "sensor_msgs/msg/CameraInfo",
             CLOUD: "sensor_msgs/msg/PointCloud2",
             layout.TF_STATIC_TOPIC: "tf2_msgs/msg/TFMessage"}
    with Writer(path, version=9) as writer:
        connections = {t: writer.add_connection(t, types[t], typestore=store) for t in topics}

        def write(topic: str, stamp_ns: int, message: object = None, raw: bytes = b"") -> None:
            if topic in connections:
                data = raw or store.serialize_cdr(message, message.__msgtype__)
                writer.write(connections[topic], stamp_ns, data)

        T_camera_tf_from_velo = np.linalg.inv(layout.T_ref_from_camera_tf(camera.P2)) @ (
            camera.T_rect_from_lidar)
        rig = transform_stamped_message(store, np.linalg.inv(T_camera_tf_from_velo),
                                        layout.VELO_FRAME, layout.CAMERA_FRAME, FIRST_NS)
        write(layout.TF_STATIC_TOPIC, FIRST_NS, tf_message(store, [rig]))
        for index, (stamp_ns, image, points) in enumerate(frames):
            message = image_message(store, image, stamp_ns, layout.CAMERA_FRAME)
            raw = b""
            if index in corrupt_images:  # cut short: deserialisation fails
                raw = bytes(store.serialize_cdr(message, message.__msgtype__)[:40])
            write(IMAGE, stamp_ns, message, raw)
            write(INFO, stamp_ns, camera_info_message(store, camera.P2, image.shape[:2],
                                                      stamp_ns, layout.CAMERA_FRAME))
            cloud_ns = stamp_ns + cloud_offsets_ns.get(index, -12_000_000)
            write(CLOUD, cloud_ns, point_cloud_message(store, points, cloud_ns,
                                                       layout.VELO_FRAME))
    return path


def write_labelled_drive(root: Path, num_frames: int = 3) -> Path:
    """A full-size raw drive with one car 12 m ahead (fully visible) in every frame."""
    calib = kitti_calib()
    oxts = OxtsPacket(*([0.0] * 25), *([0] * 5))
    car = Tracklet("Car", h=1.5, w=1.6, l=3.9, first_frame=0,
                   poses=np.array([[12.0, 0.5, -1.73, 0.0, 0.0, 0.2]] * num_frames),
                   occlusion=np.zeros(num_frames), truncation=np.zeros(num_frames))
    rng = np.random.default_rng(3)
    with RawDriveWriter(root, "2011_09_26", 2) as writer:
        writer.write_calib(raw_calib_from_camera_calib(calib, FULL_HW))
        for index in range(num_frames):
            image = np.full((*FULL_HW, 3), 90, dtype=np.uint8)
            xyz = rng.uniform([3.0, -10.0, -1.8], [40.0, 10.0, 0.0], size=(500, 3))
            points = np.hstack([xyz, np.zeros((500, 1))]).astype(np.float32)
            stamp_ns = FIRST_NS + index * PERIOD_NS
            writer.add_frame(image, points, oxts, stamp_ns, stamp_ns - 10_000_000)
        writer.write_tracklets([car])
    return writer.drive_dir


def parameters_in_file(path: Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` (or ``/**``) in a ROS 2 parameter file."""
    data = load_yaml_mapping(path)
    for key in (node_name, f"/{node_name}", "/**", "**"):
        section = data.get(key)
        if isinstance(section, dict) and "ros__parameters" in section:
            return dict(section["ros__parameters"])
    raise ConfigError(f"{path}: no ros__parameters for node {node_name!r}")


def load_distiller_config(path: Path | None, **overrides: Any) -> DistillerConfig:
    """Config from a parameter file (optional) with overrides, as the node would build it."""
    values = parameters_in_file(path) if path is not None else {}
    train = {**(values.pop("train", None) or {}), **overrides.pop("train", {})}
    return distiller_config_from_values({**values, **overrides, "train": train},
                                        where=str(path) if path else "distiller")

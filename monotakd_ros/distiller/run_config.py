"""Configuration of an offline distillation run (bag or topic mode), shared by node and console.

One frozen dataclass, ``DistillerConfig``, holds what the distiller needs besides the models'
own configs. It is read from the same parameters the ROS node declares: a ROS 2 parameter file
(``<node>: ros__parameters: {...}``, nested ``train:`` keys are the node's ``train.*``
parameters) or a flat mapping. Empty strings stand for "not set" in path parameters because ROS
parameters cannot be null.

``train`` is the trainer's own ``TrainConfig``: optimiser, LR schedule, batch size, device, AMP,
seed, intervals and the distillation preset. Fields about epochs, data loading, augmentation and
validation do not apply to streamed frames and are ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.configuration import (
    bounded,
    check_fields,
    dataclass_from_dict,
    load_yaml_mapping,
)
from monotakd_ros.errors import ConfigError
from monotakd_ros.training.config import TrainConfig

NODE_NAME = "monotakd_distiller"
SourceMode = Literal["bag", "topic"]
Reliability = Literal["reliable", "best_effort"]


def distill_train_defaults() -> TrainConfig:
    """TrainConfig defaults for fine-tuning a trained student on unlabelled frames."""
    return TrainConfig(lr=2e-4, schedule="constant", batch_size=2, workers=0, max_steps=0,
                       log_interval=20, val_interval=0, ckpt_interval=200, distill="takd")


@dataclass(frozen=True)
class DistillerConfig:
    """Models, frame sources, pairing, outputs and evaluation of one distillation run."""

    out_dir: Path  # run folder: checkpoints/last, train_log.csv, frames_log.csv, eval_results.json
    teacher: Path  # frozen LiDAR teacher checkpoint
    assistant: Path  # frozen TA checkpoint
    model_config: Path | None = None  # default: the model config stored in the teacher checkpoint
    student_init: Path | None = None  # student checkpoint to start from (else random weights)
    resume: bool = False  # continue out_dir/checkpoints/last
    mode: SourceMode = "bag"
    bags: tuple[Path, ...] = ()  # bag mode: rosbag2 folders or ROS 1 .bag files, in order
    passes: int = bounded(1, gt=0)  # bag mode: how many times every bag is read
    show_progress_bar: bool = True  # bag mode: tqdm bar on the terminal
    slop_s: float = bounded(0.05, ge=0)  # image <-> CameraInfo / point cloud stamp tolerance
    calib_file: Path | None = None  # KITTI object calib file or raw date dir; else /tf_static
    image_topic: str = layout.IMAGE_TOPIC
    camera_info_topic: str = layout.CAMERA_INFO_TOPIC
    point_cloud_topic: str = layout.POINT_CLOUD_TOPIC
    reliability: Reliability = "reliable"  # topic mode: QoS of the three sensor subscriptions
    # topic mode: paired frames waiting for the trainer (older dropped)
    queue_size: int = bounded(32, gt=0)
    # topic mode: finish this long after the last frame; 0 = never
    idle_timeout_s: float = bounded(0.0, ge=0)
    progress_period_s: float = bounded(2.0, gt=0)  # how often progress is published / logged
    eval_data: Path | None = None  # KITTI object root or a bag with ground truth
    eval_split: str = ""  # object root: ImageSets name or split file; "" = every frame
    eval_max_frames: int = bounded(0, ge=0)  # 0 = all
    labelled_data: Path | None = None  # KITTI object root whose frames join every step (replay)
    labelled_split: str = "train"  # ImageSets name or split file of labelled_data; "" = all
    # labelled frames added to each step (needs labelled_data)
    labelled_per_step: int = bounded(0, ge=0)
    train: TrainConfig = field(default_factory=distill_train_defaults)

    def __post_init__(self) -> None:
        check_fields(self, "distiller")
        if self.mode == "bag" and not self.bags:
            raise ConfigError("bags: bag mode needs at least one bag path")
        if (self.labelled_data is None) != (self.labelled_per_step == 0):
            raise ConfigError(f"labelled_data and labelled_per_step go together (replay of "
                              f"labelled frames): got {self.labelled_data} and "
                              f"{self.labelled_per_step}")
        if self.train.distill == "none":
            raise ConfigError("train.distill: 'none' has no distillation term, and unlabelled "
                              "frames give no detection loss; use takd, imd or cmkd")
        if self.train.grad_accum != 1:
            raise ConfigError(f"train.grad_accum: the distiller steps once per batch, got "
                              f"{self.train.grad_accum}; raise train.batch_size instead")
        if self.mode == "topic" and self.train.schedule != "constant" and (
                self.train.max_steps == 0):
            raise ConfigError(f"train.schedule: {self.train.schedule!r} needs train.max_steps "
                              "in topic mode (a stream has no known length); or use 'constant'")

    @property
    def checkpoint_interval(self) -> int:
        """Optimiser steps between checkpoints (0: only at the end)."""
        return self.train.ckpt_interval


def _optional_path_fields() -> set[str]:
    hints = typing.get_type_hints(DistillerConfig)
    return {name for name, hint in hints.items() if hint == (Path | None)}


def _nested(values: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": x}`` -> ``{"train": {"lr": x}}``; nested mappings pass unchanged."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        head, dot, rest = str(key).partition(".")
        if dot:
            nested.setdefault(head, {})
            if not isinstance(nested[head], dict):
                raise ConfigError(f"{head}: given both as a value and as {key!r}")
            nested[head][rest] = value
        else:
            nested[key] = value
    return nested


def distiller_config_from_values(values: dict[str, Any], where: str = "distiller"
                                 ) -> DistillerConfig:
    """Strictly validated config from parameter values (dotted or nested ``train`` keys)."""
    data = _nested(values)
    for key in _optional_path_fields():
        if data.get(key) == "":
            data[key] = None
    if isinstance(data.get("bags"), (list, tuple)):
        data["bags"] = [b for b in data["bags"] if b != ""]
    train_values = data.pop("train", {}) or {}
    if not isinstance(train_values, dict):
        raise ConfigError(f"{where}.train: expected a mapping, got {train_values!r}")
    base = dataclasses.asdict(distill_train_defaults())
    base["betas"] = list(base["betas"])
    data["train"] = {**base, **train_values}
    return dataclass_from_dict(DistillerConfig, data, where=where)


def parameters_in_file(path: Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` (or ``/**``) in a ROS 2 parameter file.

    A file without ``ros__parameters`` is taken as a plain mapping of the same keys.
    """
    data = load_yaml_mapping(path)
    for key in (node_name, f"/{node_name}", "/**", "**"):
        section = data.get(key)
        if isinstance(section, dict) and "ros__parameters" in section:
            parameters = section["ros__parameters"]
            if not isinstance(parameters, dict):
                raise ConfigError(f"{path}: {key}.ros__parameters must be a mapping")
            return dict(parameters)
    if any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        raise ConfigError(f"{path}: no ros__parameters for node {node_name!r} or '/**'; "
                          f"sections found: {sorted(data)}")
    return data


def load_distiller_config(path: Path | None, **overrides: Any) -> DistillerConfig:
    """Config from a parameter file (optional) with overrides; ``None`` overrides are ignored."""
    values = parameters_in_file(path) if path is not None else {}
    values = _nested(values)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "train":
            values["train"] = {**(values.get("train") or {}), **value}
        else:
            values[key] = value
    return distiller_config_from_values(values, where=str(path) if path else "distiller")

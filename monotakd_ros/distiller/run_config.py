"""Configuration of an offline distillation run (bag or topic mode), shared by node and console.

One frozen dataclass, ``DistillerConfig``, holds what the distiller needs besides the models'
own configs. The distiller node's parameters are generated from it (``ros/dataclass_params``):
names, types, defaults, descriptions (``help``) and ranges; nested ``train`` fields are the
``train.*`` parameters listed in ``TRAIN_PARAMETER_HELP``. An empty string means "not set" in the
optional path parameters (ROS parameters cannot be null).

``train`` is the trainer's own ``TrainConfig``: optimiser, LR schedule, batch size, device, AMP,
seed, intervals and the distillation preset. Fields about epochs, data loading, augmentation and
validation do not apply to streamed frames and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.configuration import bounded, check_fields, dataclass_from_dotted, described
from monotakd_ros.data.kitti.raw_mapping import LeakGuardConfig
from monotakd_ros.errors import ConfigError
from monotakd_ros.training.config import TrainConfig

NODE_NAME = "monotakd_distiller"
SourceMode = Literal["bag", "topic"]
Reliability = Literal["reliable", "best_effort"]
# The TrainConfig fields that apply to streamed frames, as train.* parameters, with their text.
TRAIN_PARAMETER_HELP = {
    "train.lr": "AdamW learning rate",
    "train.weight_decay": "AdamW weight decay",
    "train.schedule": "learning-rate schedule (onecycle and cosine need max_steps in topic mode)",
    "train.warmup_steps": "cosine: linear warm-up steps",
    "train.min_lr_ratio": "cosine: final lr = lr * min_lr_ratio",
    "train.batch_size": "frames per optimiser step",
    "train.max_steps": "stop after this many steps; 0: when the data ends",
    "train.grad_clip": "max gradient norm; 0 disables clipping",
    "train.max_nonfinite_steps": "steps in a row with a NaN/inf loss that stop the run",
    "train.ckpt_interval": "steps between checkpoints; 0: at the end only",
    "train.log_interval": "steps between loss log lines",
    "train.device": "torch device",
    "train.amp": "autocast (fp16 needs CUDA)",
    "train.seed": "seed of the student's initial weights",
    "train.distill": "distillation preset (distill/config.py)",
    "train.distill_overrides": "loss setting over the preset",
    "train.freeze_bn": "keep the student's BatchNorm running statistics (eval mode) while its "
                       "weights train",
}


def distill_train_defaults() -> TrainConfig:
    """TrainConfig defaults for fine-tuning a trained student on unlabelled frames."""
    return TrainConfig(lr=2e-4, schedule="constant", batch_size=2, workers=0, max_steps=0,
                       log_interval=20, val_interval=0, ckpt_interval=200, distill="takd")


@dataclass(frozen=True)
class DistillerConfig:
    """Models, frame sources, pairing, outputs and evaluation of one distillation run."""

    out_dir: Path = described(help="run folder: checkpoints/last, train_log.csv, "
                              "frames_log.csv, eval_results.json")
    teacher: Path = described(help="frozen LiDAR teacher checkpoint")
    assistant: Path = described(help="frozen teaching-assistant checkpoint")
    model_config: Path | None = described(
        None, help="model YAML; empty: the config stored in the teacher checkpoint")
    student_init: Path | None = described(
        None, help="student checkpoint to start from; empty: random weights")
    resume: bool = described(False, help="continue out_dir/checkpoints/last (frames used "
                             "before are not reused)")
    mode: SourceMode = described("bag", help="bag: read the bags at full speed; topic: "
                                 "subscribe to a replay")
    bags: tuple[Path, ...] = described((), help="bag mode: rosbag2 folders or ROS 1 .bag "
                                       "files, read in order")
    passes: int = bounded(1, gt=0, help="bag mode: how many times every bag is read")
    show_progress_bar: bool = described(True, help="bag mode: tqdm progress bar on the "
                                        "terminal")
    slop_s: float = bounded(0.05, ge=0, help="max stamp difference (s) between an image and "
                            "its CameraInfo / point cloud")
    calib_file: Path | None = described(
        None, help="KITTI object calib file or raw date folder; empty: use /tf_static")
    image_topic: str = described(layout.IMAGE_TOPIC, help="camera image (Image)")
    camera_info_topic: str = described(layout.CAMERA_INFO_TOPIC, help="CameraInfo; P is used")
    point_cloud_topic: str = described(layout.POINT_CLOUD_TOPIC,
                                       help="LiDAR PointCloud2 with x, y, z[, i]")
    reliability: Reliability = described(
        "reliable", help="topic mode: QoS reliability of the sensor subscriptions (reliable "
        "matches ros2 bag play; best_effort also matches sensor drivers)")
    queue_size: int = bounded(32, gt=0, help="topic mode: paired frames waiting for the "
                              "trainer; older ones are dropped")
    idle_timeout_s: float = bounded(0.0, ge=0, help="topic mode: finish when no frame came "
                                    "for this many seconds after the first one; 0: never")
    progress_period_s: float = bounded(2.0, gt=0, help="seconds between progress messages")
    eval_data: Path | None = described(
        None, help="labelled KITTI object root or bag with ground truth, evaluated before and "
        "after; empty: no evaluation")
    eval_split: str = described("", help="ImageSets name or split file of eval_data; empty: "
                                "every frame")
    eval_max_frames: int = bounded(0, ge=0, help="evaluate at most this many frames; 0: all")
    labelled_data: Path | None = described(
        None, help="KITTI object root whose labelled frames join every step (replay, keeps "
        "the detection loss acting); empty: unlabelled only")
    labelled_split: str = described("train", help="ImageSets name or split file of "
                                    "labelled_data; empty: every frame")
    labelled_per_step: int = bounded(0, ge=0, help="labelled frames added to every step; > 0 "
                                     "with labelled_data")
    leak_guard: LeakGuardConfig = field(default_factory=LeakGuardConfig)  # bags named by drive
    train: TrainConfig = field(default_factory=distill_train_defaults)

    def __post_init__(self) -> None:
        check_fields(self, "distiller")
        if self.train.leak_guard != LeakGuardConfig():
            raise ConfigError("train.leak_guard: the distiller reads leak_guard.* (top level); "
                              "train.leak_guard is monotakd-train's")
        if self.train.hidden_label_split:
            raise ConfigError("train.hidden_label_split: monotakd-train only; the distiller "
                              "learns from bags (labelled_data replays labelled frames)")
        if self.mode == "bag" and not self.bags:
            raise ConfigError("bags: bag mode needs at least one bag path")
        if (self.labelled_data is None) != (self.labelled_per_step == 0):
            raise ConfigError(f"labelled_data and labelled_per_step go together (replay of "
                              f"labelled frames): got {self.labelled_data} and "
                              f"{self.labelled_per_step}")
        if self.train.distill == "none":
            raise ConfigError("train.distill: 'none' has no distillation term, and unlabelled "
                              "frames give no detection loss; use another preset (e.g. "
                              "takd, upstream, imd_response)")
        if self.train.grad_accum != 1:
            raise ConfigError(f"train.grad_accum: the distiller steps once per batch, got "
                              f"{self.train.grad_accum}; raise train.batch_size instead")
        if self.mode == "topic" and self.train.schedule != "constant" and (
                self.train.max_steps == 0):
            raise ConfigError(f"train.schedule: {self.train.schedule!r} needs train.max_steps "
                              "in topic mode (a stream has no known length); or use 'constant'")


def distiller_config_from_values(values: dict[str, Any], where: str = "distiller"
                                 ) -> DistillerConfig:
    """Strictly validated config from parameter values (dotted or nested ``train`` keys)."""
    return dataclass_from_dotted(DistillerConfig, values, where)

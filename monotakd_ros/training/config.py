"""Training configuration: one frozen dataclass loaded strictly from YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monotakd_ros.configuration import (
    bounded,
    check_fields,
    dataclass_from_dict,
    errors_naming,
    load_yaml_mapping,
)
from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.data.kitti.raw_mapping import LeakGuardConfig
from monotakd_ros.distill.config import (
    DetectionLossWeights,
    DistillConfig,
    DistillMode,
    distill_preset,
)
from monotakd_ros.errors import ConfigError

Schedule = Literal["onecycle", "cosine", "constant"]
DevicePreference = Literal["auto", "cpu", "cuda"]
AmpMode = Literal["off", "fp16", "bf16"]
ResidentMode = Literal["auto", "on", "off"]
FrozenCacheMode = Literal["off", "fp16", "fp32"]
_FIXED_BY_STAGE = ("detection",)  # set through TrainConfig.detection, not the overrides
_BOOL_DISTILL_FIELDS = {f.name for f in dataclasses.fields(DistillConfig)
                        if f.type in (bool, "bool")}


@dataclass(frozen=True)
class TrainConfig:
    """Everything the trainer needs besides the model; a step = ``grad_accum`` batches."""

    # AdamW
    lr: float = bounded(2e-3, gt=0)
    weight_decay: float = bounded(0.01, ge=0)
    betas: tuple[float, float] = bounded((0.9, 0.99), ge=0, lt=1)
    # LR schedule, a pure function of the step (see schedule.py)
    schedule: Schedule = "onecycle"
    pct_start: float = bounded(0.4, gt=0, lt=1)  # one-cycle: fraction of the steps spent rising
    div_factor: float = bounded(10.0, gt=0)  # one-cycle: start lr = lr / div_factor
    final_div_factor: float = bounded(100.0, gt=0)  # one-cycle: end lr = start / this
    warmup_steps: int = bounded(500, ge=0)  # cosine
    min_lr_ratio: float = bounded(0.01, ge=0, le=1)  # cosine: end lr = lr * min_lr_ratio
    # length: max_steps > 0 overrides epochs
    epochs: int = bounded(80, gt=0)
    max_steps: int = bounded(0, ge=0)
    batch_size: int = bounded(4, gt=0)
    grad_accum: int = bounded(1, gt=0)
    grad_clip: float = bounded(10.0, ge=0)  # max global grad norm; 0 disables clipping
    # steps with a NaN/inf loss or gradient are skipped; this many in a row stop the run
    max_nonfinite_steps: int = bounded(20, gt=0)
    # runtime
    device: DevicePreference = "auto"
    amp: AmpMode = "off"
    workers: int = bounded(2, ge=0)
    seed: int = bounded(0, ge=0)
    threads: int = bounded(0, ge=0)  # torch CPU threads; 0 = chosen from the CPU count
    # prepared data (training/data_loading.py): the split cached at input size, resident on the
    # device when it fits (auto) or read from memory maps, and the student's frozen targets
    data_cache: bool = False
    resident: ResidentMode = "auto"
    frozen_cache: FrozenCacheMode = "off"
    # data
    train_split: str = "train"
    val_split: str = "val"
    val_max_frames: int = bounded(0, ge=0)  # 0 = the whole val split
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training frames only
    # repeat-factor sampling (training/repeat_factors.py): frames with classes held by fewer
    # than this share of the training frames repeat up to sqrt(t / share) times; 0 = off
    repeat_factor_threshold: float = bounded(0.0, ge=0, le=1)
    # intervals, in optimiser steps; 0 disables
    log_interval: int = bounded(10, ge=0)
    val_interval: int = bounded(1000, ge=0)
    ckpt_interval: int = bounded(1000, ge=0)
    # losses: GT detection weights (every stage) and the student's distillation preset, whose
    # weights (distill/config.py DistillConfig fields) may be overridden one by one
    detection: DetectionLossWeights = field(default_factory=DetectionLossWeights)
    distill: DistillMode = "takd"
    distill_overrides: dict[str, float] = field(default_factory=dict)
    # DDP
    find_unused_parameters: bool = False
    sync_batchnorm: bool = False
    # BatchNorm layers keep the running statistics the model starts with (eval mode) while
    # every weight trains: frames of another source (unlabelled drives) do not shift them
    freeze_bn: bool = False
    # frames of this ImageSets split (or split file) of the training data join the training
    # set with their labels hidden (student stage: distillation terms only on them); "" = none
    hidden_label_split: str = ""
    # raw drives holding held-out (val/test) object frames are refused or skipped
    leak_guard: LeakGuardConfig = field(default_factory=LeakGuardConfig)

    def __post_init__(self) -> None:
        check_fields(self, "train")
        self.distill_config()  # rejects unknown or mistyped override keys now, not mid-run
        if self.hidden_label_split and self.hidden_label_split in (self.train_split,
                                                                   self.val_split):
            raise ConfigError(f"train.hidden_label_split: {self.hidden_label_split!r} is also "
                              "train_split or val_split; name a split of extra frames")
        if self.data_cache and self.augment.intrinsics_probability > 0.0:
            raise ConfigError("train.data_cache: the prepared split is augmented at input size "
                              "and cannot resample intrinsics; set data_cache: false or "
                              "augment.intrinsics_probability: 0")

    def distill_config(self) -> DistillConfig:
        """Loss weights of the student stage: the ``distill`` preset plus the overrides."""
        allowed = {f.name for f in dataclasses.fields(DistillConfig)} - set(_FIXED_BY_STAGE)
        for key, value in self.distill_overrides.items():
            if key not in allowed:
                raise ConfigError(f"train.distill_overrides.{key}: unknown; allowed: "
                                  f"{sorted(allowed)}")
            if isinstance(value, bool) != (key in _BOOL_DISTILL_FIELDS):
                raise ConfigError(f"train.distill_overrides.{key}: wrong type {value!r}")
            if not isinstance(value, (bool, int, float)):
                raise ConfigError(f"train.distill_overrides.{key}: expected a number, "
                                  f"got {value!r}")
        return distill_preset(self.distill, detection=self.detection, **self.distill_overrides)


def load_train_config(path: Path, **overrides: Any) -> TrainConfig:
    """Read a training YAML (keys at top level or under ``train:``) and apply CLI overrides."""
    data = load_yaml_mapping(path)
    if set(data) == {"train"}:
        data = data["train"]
    with errors_naming(path):
        cfg = dataclass_from_dict(TrainConfig, data, where=f"{path}:train")
    return with_overrides(cfg, **overrides)


def with_overrides(cfg: TrainConfig, **overrides: Any) -> TrainConfig:
    """Copy of ``cfg`` with the given fields replaced; ``None`` values are ignored."""
    changes = {key: value for key, value in overrides.items() if value is not None}
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ConfigError(f"train overrides: unknown key(s) {unknown}")
    # Re-validate through the strict loader so overrides obey the same types as YAML.
    merged = {**dataclasses.asdict(cfg), **changes}
    merged["betas"] = list(merged["betas"])
    return dataclass_from_dict(TrainConfig, merged, where="train")

"""What each training stage trains, and with which loss.

- ``teacher``: the LiDAR teacher, GT detection loss.
- ``ta``: the teaching assistant (camera architecture fed with LiDAR depth), GT detection loss.
- ``student``: the monocular student, distilled from a frozen teacher and a frozen TA
  (``distill`` none | cmkd | imd | takd), plus the GT loss on frames that have labels.

Each stage exposes one trainable ``model`` and a ``loss_module`` whose ``forward(batch, frozen)``
returns the loss terms; DDP wraps that module, so gradient sync never depends on which
sub-module methods a loss calls. Frozen models are built, frozen and run in ``FrozenModels``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.distill.config import DetectionLossWeights, DistillConfig
from monotakd_ros.distill.losses import LossTerms, detector_losses, student_losses
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io.checkpoint import (
    CheckpointMeta,
    load_checkpoint_meta,
    load_model_weights,
)
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.models.build import build_assistant, build_student, build_teacher, freeze
from monotakd_ros.models.camera_detector import CameraBevDetector
from monotakd_ros.models.config import ModelConfig, saved_model_config
from monotakd_ros.models.head import AnchorHead
from monotakd_ros.models.object_cells import object_cell_mask
from monotakd_ros.models.outputs import CameraDetectorOutput, Detections, TeacherOutput
from monotakd_ros.models.postprocess import detections_from_head
from monotakd_ros.models.target_assigner import AnchorTargets, assign_targets
from monotakd_ros.models.teacher import LidarTeacher
from monotakd_ros.models.trunks import STRIDE
from monotakd_ros.models.weight_transfer import WeightTransfer, transfer_matching_weights

LOG = logging.getLogger(__name__)

StageName = Literal["teacher", "ta", "student"]
STAGE_NAMES: tuple[StageName, ...] = ("teacher", "ta", "student")
_IGNORED_CONFIG_KEYS = ("trunk.pretrained_path",)  # initialisation only, not the architecture


def loss_dict(terms: LossTerms) -> dict[str, torch.Tensor]:
    """Loss terms as a tensor dict with ``total`` (DDP-friendly forward output)."""
    return {"total": terms.total, **terms.present()}


def gt_targets(head: AnchorHead, batch: FrameBatch, model_cfg: ModelConfig) -> AnchorTargets:
    """Anchor targets of a batch; unlabelled frames get all-ignored anchors (no GT loss)."""
    return assign_targets(head.anchors, head.anchor_classes, batch.gt_boxes_lidar,
                          batch.gt_classes, model_cfg.head, batch.has_labels)


def camera_forward(model: CameraBevDetector, batch: FrameBatch) -> CameraDetectorOutput:
    """Student or TA forward; only the TA reads the LiDAR depth maps."""
    depth_maps = batch.depth_maps if model.depth_source == "lidar" else None
    return model(batch.images, batch.P2, batch.T_rect_from_lidar, depth_maps)


class DetectorLoss(nn.Module):
    """GT detection loss of the teacher (points) or the TA (image + LiDAR depth)."""

    def __init__(self, detector: LidarTeacher | CameraBevDetector, model_cfg: ModelConfig,
                 weights: DetectionLossWeights) -> None:
        super().__init__()
        self.detector = detector
        self.model_cfg = model_cfg
        self.weights = weights

    def forward(self, batch: FrameBatch, frozen: FrozenOutputs | None = None
                ) -> dict[str, torch.Tensor]:
        """Loss terms of one batch (``frozen`` is unused: nothing is distilled here)."""
        if isinstance(self.detector, LidarTeacher):
            head = self.detector(batch.points).head
        else:
            head = camera_forward(self.detector, batch).head
        targets = gt_targets(self.detector.head, batch, self.model_cfg)
        return loss_dict(detector_losses(head, targets, self.weights))


@dataclass
class FrozenOutputs:
    """Targets from the frozen teacher and TA for one batch (None where not needed)."""

    teacher: TeacherOutput | None
    assistant: CameraDetectorOutput | None


class FrozenModels:
    """Frozen teacher and TA: the one place for eval(), requires_grad_(False) and no_grad."""

    def __init__(self, teacher: LidarTeacher | None, assistant: CameraBevDetector | None) -> None:
        self.teacher = freeze(teacher) if teacher is not None else None
        self.assistant = freeze(assistant) if assistant is not None else None

    def to(self, device: torch.device) -> FrozenModels:
        """Move both models to ``device``."""
        for model in (self.teacher, self.assistant):
            if model is not None:
                model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, batch: FrameBatch) -> FrozenOutputs:
        """Teacher output from the LiDAR, TA output from the image and LiDAR depth."""
        teacher = self.teacher(batch.points) if self.teacher is not None else None
        assistant = camera_forward(self.assistant, batch) if self.assistant is not None else None
        return FrozenOutputs(teacher=teacher, assistant=assistant)


class StudentLoss(nn.Module):
    """Distillation terms switched on in DistillConfig plus GT terms where labels exist."""

    def __init__(self, student: CameraBevDetector, model_cfg: ModelConfig,
                 distill: DistillConfig) -> None:
        super().__init__()
        self.detector = student
        self.model_cfg = model_cfg
        self.distill = distill

    def forward(self, batch: FrameBatch, frozen: FrozenOutputs) -> dict[str, torch.Tensor]:
        """Loss terms of one batch, mixing labelled and unlabelled frames."""
        output = camera_forward(self.detector, batch)
        # Always assign (all-ignored on unlabelled frames) so the head stays in the graph and
        # DDP sees the same parameters used on every rank.
        targets = gt_targets(self.detector.head, batch, self.model_cfg)
        object_cells = None
        depth_logits = output.features.depth_logits
        if self.distill.depth_foreground_weight > 0 and depth_logits is not None:
            object_cells = object_cell_mask(batch.gt_boxes_lidar, batch.gt_classes,
                                            batch.T_rect_from_lidar, batch.P2,
                                            tuple(depth_logits.shape[-2:]), STRIDE)
        terms = student_losses(self.distill, output, targets=targets, teacher=frozen.teacher,
                               assistant=frozen.assistant, depth_maps=batch.depth_maps,
                               depth_bins=self.model_cfg.depth, object_cells=object_cells)
        return loss_dict(terms)


class Stage:
    """One training stage: the trainable model, its loss, the frozen models and prediction."""

    def __init__(self, name: StageName, model_cfg: ModelConfig, spec: InputSpec,
                 model: LidarTeacher | CameraBevDetector, loss_module: nn.Module,
                 frozen: FrozenModels | None = None) -> None:
        self.name = name
        self.model_cfg = model_cfg
        self.spec = spec
        self.model = model
        self.loss_module = loss_module
        self.frozen = frozen

    def to(self, device: torch.device) -> Stage:
        """Move the trainable and the frozen models to ``device``."""
        self.loss_module.to(device)
        if self.frozen is not None:
            self.frozen.to(device)
        return self

    def frozen_outputs(self, batch: FrameBatch) -> FrozenOutputs | None:
        """Distillation targets of the batch (None outside the student stage)."""
        return self.frozen(batch) if self.frozen is not None else None

    @torch.no_grad()
    def predict(self, batch: FrameBatch) -> list[Detections]:
        """Detections of the trainable model (call in eval mode)."""
        if isinstance(self.model, LidarTeacher):
            head = self.model(batch.points).head
        else:
            head = camera_forward(self.model, batch).head
        return detections_from_head(head, self.model.head.anchors, self.model_cfg.head,
                                    self.model_cfg.postprocess)

    def checkpoint_meta(self, step: int, epoch: int,
                        metrics: dict[str, float] | None = None) -> CheckpointMeta:
        """Self-description stored with every checkpoint of this stage."""
        return CheckpointMeta(stage=self.name, model_config=dataclass_to_dict(self.model_cfg),
                              input_spec=self.spec,
                              anchors=[dataclass_to_dict(a) for a in self.model_cfg.head.anchors],
                              step=step, epoch=epoch, metrics=dict(metrics or {}))


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain-data model configs."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        where = f"{prefix}{key}"
        if where in _IGNORED_CONFIG_KEYS:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += config_differences(a, b, f"{where}.")
        elif _plain(a) != _plain(b):
            differences.append(f"{where}: checkpoint {a!r} vs config {b!r}")
    return differences


def _plain(value: object) -> object:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def architecture_differences(meta: CheckpointMeta, path: Path, model_cfg: ModelConfig
                             ) -> list[str]:
    """Dotted keys where the checkpoint's architecture differs from ``model_cfg``, named."""
    filled = dataclass_to_dict(saved_model_config(meta, path))
    differences = config_differences(filled, dataclass_to_dict(model_cfg))
    written = config_differences(meta.model_config, filled)  # keys the checkpoint predates
    predates = tuple(entry.split(":")[0] for entry in written)

    def predated(key: str) -> bool:
        return any(key == old or key.startswith(old + ".") for old in predates)

    return [entry + (" (the checkpoint predates this key: built with its default)"
                     if predated(entry.split(":")[0]) else "") for entry in differences]


# Model-config sections the LiDAR teacher never reads (the camera path): a teacher trained
# before a student module changed still teaches it.
CAMERA_ONLY_KEYS = ("image", "trunk", "depth", "depth_head", "image_channels", "scnet",
                    "spatial_cue", "fusion_convs", "fusion_style")


# Post-processing (score threshold, NMS) is not architecture: a trained model may be loaded and
# scored at other settings. Resuming a run still checks it (its val selection depends on it).
NOT_ARCHITECTURE_KEYS = ("postprocess",)


def _is_under(entry: str, tops: tuple[str, ...]) -> bool:
    key = entry.split(":")[0]
    return any(key == top or key.startswith(top + ".") for top in tops)


def load_checked_checkpoint(path: Path, expected_stage: StageName, model_cfg: ModelConfig,
                           model: nn.Module) -> nn.Module:
    """Load a checkpoint into ``model`` after checking its stage and model config.

    ``NOT_ARCHITECTURE_KEYS`` may differ; a teacher is checked on the keys it reads only (not
    ``CAMERA_ONLY_KEYS``).
    """
    meta = load_checkpoint_meta(path)
    if meta.stage != expected_stage:
        raise CheckpointError(f"{path}: is a {meta.stage!r} checkpoint, expected a "
                              f"{expected_stage!r} checkpoint")
    ignored = NOT_ARCHITECTURE_KEYS + (CAMERA_ONLY_KEYS if expected_stage == "teacher" else ())
    differences = [entry for entry in architecture_differences(meta, path, model_cfg)
                   if not _is_under(entry, ignored)]
    if differences:
        shown = "; ".join(differences[:5])
        raise CheckpointError(f"{path}: model config differs from --model-config "
                              f"({len(differences)} keys): {shown}")
    load_model_weights(path, model)
    LOG.info("loaded %s checkpoint %s (step %d)", expected_stage, path, meta.step)
    return model


def initialise_from(path: Path, stage_name: StageName, model_cfg: ModelConfig,
                    model: nn.Module) -> WeightTransfer | None:
    """``--init-from``: the same stage exactly; TA → student where names and shapes match."""
    meta = load_checkpoint_meta(path)
    if meta.stage == stage_name:
        load_checked_checkpoint(path, stage_name, model_cfg, model)
        return None
    if (meta.stage, stage_name) != ("ta", "student"):
        raise CheckpointError(f"{path}: is a {meta.stage!r} checkpoint, expected a "
                              f"{stage_name!r} checkpoint (--init-from across stages: only the "
                              "TA into the student)")
    source_cfg = saved_model_config(meta, path)  # its own architecture: shapes may differ
    source = load_checked_checkpoint(path, "ta", source_cfg, build_assistant(source_cfg))
    transfer = transfer_matching_weights(source, model)
    LOG.info("initialised the %s from TA checkpoint %s: %s", stage_name, path,
             transfer.summary())
    return transfer


def load_trained_stage(name: StageName, model_cfg: ModelConfig, spec: InputSpec,
                       checkpoint: Path) -> Stage:
    """A stage around a trained checkpoint, for prediction and evaluation only."""
    builders = {"teacher": build_teacher, "ta": build_assistant, "student": build_student}
    if name not in builders:
        raise ConfigError(f"stage: expected one of {list(STAGE_NAMES)}, got {name!r}")
    model = load_checked_checkpoint(checkpoint, name, model_cfg, builders[name](model_cfg))
    model.eval()
    return Stage(name, model_cfg, spec, model, DetectorLoss(model, model_cfg,
                                                            DetectionLossWeights()))


def build_stage(name: str, model_cfg: ModelConfig, spec: InputSpec,
                detection: DetectionLossWeights, distill: DistillConfig | None = None,
                teacher_ckpt: Path | None = None, assistant_ckpt: Path | None = None) -> Stage:
    """Assemble the stage ``name``; the student loads and freezes the teacher/TA it needs."""
    if name == "teacher":
        teacher = build_teacher(model_cfg)
        return Stage("teacher", model_cfg, spec, teacher,
                     DetectorLoss(teacher, model_cfg, detection))
    if name == "ta":
        assistant = build_assistant(model_cfg)
        return Stage("ta", model_cfg, spec, assistant,
                     DetectorLoss(assistant, model_cfg, detection))
    if name != "student":
        raise ConfigError(f"stage: expected one of {list(STAGE_NAMES)}, got {name!r}")
    if distill is None:
        raise ConfigError("stage 'student' needs a DistillConfig")
    student = build_student(model_cfg)
    frozen_teacher = frozen_assistant = None
    if distill.needs_teacher:
        if teacher_ckpt is None:
            raise ConfigError("student stage: these distillation weights need the LiDAR "
                              "teacher; pass --teacher CKPT")
        frozen_teacher = load_checked_checkpoint(teacher_ckpt, "teacher", model_cfg,
                                                build_teacher(model_cfg))
    if distill.needs_assistant:
        if assistant_ckpt is None:
            raise ConfigError("student stage: these distillation weights need the TA; pass "
                              "--assistant CKPT")
        frozen_assistant = load_checked_checkpoint(assistant_ckpt, "ta", model_cfg,
                                                  build_assistant(model_cfg))
    frozen = FrozenModels(frozen_teacher, frozen_assistant)  # type: ignore[arg-type]
    return Stage("student", model_cfg, spec, student, StudentLoss(student, model_cfg, distill),
                 frozen)

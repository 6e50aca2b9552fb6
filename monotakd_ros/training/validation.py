"""Validation: run a model over a labelled split, convert to KITTI labels, score with R40 AP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from monotakd_ros.data.batch import FrameBatch, collate_frames
from monotakd_ros.data.datasets import KittiFrameDataset
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.predictions import detections_to_kitti_labels
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.models.outputs import Detections
from monotakd_ros.training.data_loading import build_val_dataset, input_spec_for
from monotakd_ros.training.stages import StageName, load_trained_stage

LOG = logging.getLogger(__name__)

Predictor = Callable[[FrameBatch], list[Detections]]
DIFFICULTY_NAMES = ("easy", "moderate", "hard")
REPORTED_CLASS = "Car"


@dataclass(frozen=True)
class ValidationResult:
    """AP at 40 recall points (percent), Easy/Moderate/Hard, per class, and the full table."""

    # every evaluated class (Car always): {"Car": {"3d": (E, M, H), "bev": (E, M, H)}, ...}
    per_class: dict[str, dict[str, tuple[float, float, float]]]
    num_frames: int
    table: str

    @property
    def ap3d_r40(self) -> tuple[float, float, float]:
        """Car AP3D R40, Easy/Moderate/Hard."""
        return self.per_class[REPORTED_CLASS]["3d"]

    @property
    def apbev_r40(self) -> tuple[float, float, float]:
        """Car APBEV R40, Easy/Moderate/Hard."""
        return self.per_class[REPORTED_CLASS]["bev"]

    @property
    def ap3d_moderate(self) -> float:
        """The headline number: Car AP3D R40, Moderate."""
        return self.ap3d_r40[1]

    def metrics(self) -> dict[str, float]:
        """Flat ``car_ap3d_r40_easy``-style metrics for logs and checkpoint metadata."""
        values: dict[str, float] = {}
        for metric, aps in (("ap3d", self.ap3d_r40), ("apbev", self.apbev_r40)):
            for name, ap in zip(DIFFICULTY_NAMES, aps, strict=True):
                values[f"car_{metric}_r40_{name}"] = float(ap)
        return values


def predictions_as_kitti_labels(detections: Sequence[Detections], batch: FrameBatch,
                                dataset: KittiFrameDataset) -> list[KittiLabels]:
    """KITTI result labels of a batch, projected with each frame's original calibration."""
    labels = []
    for i, frame_detections in enumerate(detections):
        frame_id = batch.frame_ids[i]
        calib = dataset.kitti.calib(frame_id).camera_calib()
        image_hw = (int(batch.original_hw[i, 0]), int(batch.original_hw[i, 1]))
        labels.append(detections_to_kitti_labels(
            frame_detections.boxes_lidar, frame_detections.scores, frame_detections.classes,
            calib, image_hw, dataset.spec.class_names))
    return labels


def evaluate_split(predict: Predictor, loader: DataLoader, dataset: KittiFrameDataset,
                   device: torch.device, max_frames: int = 0) -> ValidationResult:
    """Predict every frame of ``loader`` (up to ``max_frames`` when > 0) and score it."""
    ground_truth: list[KittiLabels] = []
    predictions: list[KittiLabels] = []
    with torch.no_grad():
        for batch in loader:
            detections = predict(batch.to(device))
            predictions.extend(predictions_as_kitti_labels(detections, batch, dataset))
            ground_truth.extend(dataset.kitti.labels(frame_id) for frame_id in batch.frame_ids)
            if 0 < max_frames <= len(ground_truth):
                break
    if max_frames > 0:
        ground_truth, predictions = ground_truth[:max_frames], predictions[:max_frames]
    return validation_result(ground_truth, predictions, dataset.spec.class_names)


def validation_result(ground_truth: list[KittiLabels], predictions: list[KittiLabels],
                      class_names: Sequence[str]) -> ValidationResult:
    """Car AP3D / APBEV R40 and the full table of ``predictions`` against ``ground_truth``."""
    classes = tuple(dict.fromkeys((*class_names, REPORTED_CLASS)))
    result = evaluate_kitti(ground_truth, predictions, classes=classes)
    per_class = {name: {metric: _triple(result.average_precision(name, metric, recall_points=40))
                        for metric in ("3d", "bev")} for name in classes}
    return ValidationResult(per_class=per_class, num_frames=len(ground_truth),
                            table=result.format_table())


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    easy, moderate, hard = (float(v) for v in values)
    return easy, moderate, hard


def evaluate_checkpoint(checkpoint: Path, stage_name: StageName, model_cfg: ModelConfig,
                        data_root: Path, split: str, device: torch.device,
                        batch_size: int = 4, workers: int = 0,
                        max_frames: int = 0) -> ValidationResult:
    """Car AP of a trained checkpoint on a labelled split (stage and config are checked)."""
    spec = input_spec_for(model_cfg)
    stage = load_trained_stage(stage_name, model_cfg, spec, checkpoint).to(device)
    dataset = build_val_dataset(data_root, split, spec)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate_frames)
    return evaluate_split(stage.predict, loader, dataset, device, max_frames)

"""Evaluate a student on labelled data: a KITTI object root or a bag with ground truth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from monotakd_ros.bags.frame_reader import BagFrame, iter_bag_frames
from monotakd_ros.bags.kitti_layout import GROUND_TRUTH_TOPIC
from monotakd_ros.data.batch import FrameSample, collate_frames
from monotakd_ros.data.datasets import KittiFrameDataset
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.predictions import detections_to_kitti_labels
from monotakd_ros.distiller.samples import frame_id_of, sample_from_bag_frame
from monotakd_ros.errors import DatasetError, EvaluationError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.training.stages import Stage
from monotakd_ros.training.validation import (
    Predictor,
    ValidationResult,
    evaluate_split,
    validation_result,
)

LOG = logging.getLogger(__name__)


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml) or a single bag file, rather than a KITTI object root."""
    path = Path(path)
    return path.is_file() or (path / "metadata.yaml").is_file()


def evaluate_student(stage: Stage, data: Path, device: torch.device, *, split: str = "",
                     max_frames: int = 0, batch_size: int = 2, slop_s: float = 0.05,
                     calib: CameraCalib | None = None) -> ValidationResult:
    """Car AP (R40) and the full KITTI table of the stage's model on ``data`` (eval mode)."""
    data = Path(data)
    was_training = stage.model.training
    stage.model.eval()
    try:
        if is_bag(data):
            return evaluate_bag(stage.predict, data, stage.spec, device, batch_size=batch_size,
                                max_frames=max_frames, slop_s=slop_s, calib=calib)
        if not (data / "training").is_dir():
            raise DatasetError(f"eval data {data}: neither a bag (metadata.yaml or a .bag file) "
                               "nor a KITTI object root (training/label_2)")
        dataset = KittiFrameDataset(data, split or None, stage.spec, with_labels=True)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                            collate_fn=collate_frames)
        return evaluate_split(stage.predict, loader, dataset, device, max_frames)
    finally:
        stage.model.train(was_training)


def _labelled_frames(bag: Path, slop_s: float, calib: CameraCalib | None,
                     counts: dict[str, int]) -> Iterator[BagFrame]:
    with iter_bag_frames(bag, slop_s, calib) as reader:
        if reader.ground_truth_topic is None:
            raise EvaluationError(f"{bag}: no ground-truth topic to evaluate against (expected "
                                  f"{GROUND_TRUTH_TOPIC}, written by monotakd-kitti2bag from "
                                  "tracklet_labels.xml)")
        for frame in reader:
            if frame.gt_labels is None:
                counts["no_labels"] += 1
                continue
            yield frame


def evaluate_bag(predict: Predictor, bag: Path, spec: InputSpec, device: torch.device, *,
                 batch_size: int = 2, max_frames: int = 0, slop_s: float = 0.05,
                 calib: CameraCalib | None = None) -> ValidationResult:
    """Predict the frames of ``bag`` that have ground truth; score as ``evaluate_split`` does."""
    ground_truth: list[KittiLabels] = []
    predictions: list[KittiLabels] = []
    counts = {"no_labels": 0}
    chunk: list[tuple[BagFrame, FrameSample]] = []

    def predict_chunk() -> None:
        batch = collate_frames([sample for _, sample in chunk])
        with torch.no_grad():
            detections = predict(batch.to(device))
        for (frame, _), found in zip(chunk, detections, strict=True):
            image_hw = (int(frame.image_bgr.shape[0]), int(frame.image_bgr.shape[1]))
            predictions.append(detections_to_kitti_labels(
                found.boxes_lidar, found.scores, found.classes, frame.calib, image_hw,
                spec.class_names))
            ground_truth.append(frame.gt_labels)  # type: ignore[arg-type]
        chunk.clear()

    for frame in _labelled_frames(bag, slop_s, calib, counts):
        chunk.append((frame, sample_from_bag_frame(frame, spec, frame_id_of(str(bag),
                                                                            frame.stamp_ns),
                                                   with_labels=True)))
        if len(chunk) == batch_size:
            predict_chunk()
        if 0 < max_frames <= len(ground_truth) + len(chunk):
            break
    if chunk:
        predict_chunk()
    if not ground_truth:
        raise EvaluationError(f"{bag}: no frame with ground truth ({counts['no_labels']} frames "
                              "lacked it)")
    if counts["no_labels"]:
        LOG.warning("%s: %d frames without ground truth were not evaluated", bag,
                    counts["no_labels"])
    return validation_result(ground_truth, predictions, spec.class_names)


def result_record(result: ValidationResult) -> dict[str, Any]:
    """JSON-safe record of an evaluation (metrics, frame count, table)."""
    return {"metrics": result.metrics(), "num_frames": result.num_frames, "table": result.table}

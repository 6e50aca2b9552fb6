"""Validation scores predictions with the KITTI evaluator (the ablation: test_ablation.py)."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import TINY_MODEL, write_tiny_kitti, write_yaml

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.models.config import load_model_config
from monotakd_ros.models.outputs import Detections
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import (
    build_val_dataset,
    build_val_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.validation import evaluate_split

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("validation")
    model_path = write_yaml(root / "model.yaml", TINY_MODEL)
    # 11 val frames x 4 cars: at least 41 ground-truth cars, or the devkit's 41 score
    # thresholds cannot all be sampled and even perfect detections score below 100.
    data = write_tiny_kitti(root / "kitti", num_train=4, num_val=11, cars_per_frame=4)
    return {"root": root, "data": data,
            "model": model_path, "spec": input_spec_for(load_model_config(model_path))}


def boxes_as_detections(batch: FrameBatch, shift_x_m: float = 0.0) -> list[Detections]:
    detections = []
    for boxes, classes in zip(batch.gt_boxes_lidar, batch.gt_classes, strict=True):
        boxes = boxes.clone()
        boxes[:, 0] += shift_x_m
        detections.append(Detections(boxes_lidar=boxes, scores=torch.ones(len(boxes)),
                                     classes=classes))
    return detections


def test_perfect_predictions_score_100_and_shifted_ones_0(env: dict) -> None:
    dataset = build_val_dataset(env["data"], "val", env["spec"])
    loader = build_val_loader(dataset, TrainConfig(batch_size=3, workers=0), CPU)
    perfect = evaluate_split(boxes_as_detections, loader, dataset, CPU.device)
    assert perfect.num_frames == 11
    # Every fixture car is close enough to count at Moderate (2D height >= 25 px).
    assert perfect.ap3d_r40[1] == pytest.approx(100.0)
    assert perfect.apbev_r40[1] == pytest.approx(100.0)
    assert perfect.metrics()["car_ap3d_r40_moderate"] == pytest.approx(100.0)
    # Every class of the model is scored (scripts/evaluate_checkpoint.py prints them all).
    assert set(perfect.per_class) == {"Car", *env["spec"].class_names}
    assert perfect.per_class["Car"] == {"3d": perfect.ap3d_r40, "bev": perfect.apbev_r40}
    # 2 m along the car's axis or across: 3D IoU drops far below 0.7.
    shifted = evaluate_split(lambda b: boxes_as_detections(b, 2.0), loader, dataset, CPU.device)
    assert shifted.ap3d_r40 == (0.0, 0.0, 0.0)
    assert shifted.per_class["Car"]["3d"] == (0.0, 0.0, 0.0)
    limited = evaluate_split(boxes_as_detections, loader, dataset, CPU.device, max_frames=2)
    assert limited.num_frames == 2

"""Validation scores predictions with the KITTI evaluator; the ablation tabulates mean ± std."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.models.config import load_model_config
from monotakd_ros.models.outputs import Detections
from monotakd_ros.training.ablation import (
    ROWS,
    ablation_markdown,
    build_parser,
    run_ablation,
    summarise,
)
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import (
    build_val_dataset,
    build_val_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.validation import ValidationResult, evaluate_split

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
    # 2 m along the car's axis or across: 3D IoU drops far below 0.7.
    shifted = evaluate_split(lambda b: boxes_as_detections(b, 2.0), loader, dataset, CPU.device)
    assert shifted.ap3d_r40 == (0.0, 0.0, 0.0)
    limited = evaluate_split(boxes_as_detections, loader, dataset, CPU.device, max_frames=2)
    assert limited.num_frames == 2


def result(ap3d: tuple[float, float, float], apbev: tuple[float, float, float]
           ) -> ValidationResult:
    return ValidationResult(ap3d_r40=ap3d, apbev_r40=apbev, num_frames=1, table="")


def test_summary_mean_and_sample_std_by_hand() -> None:
    results = {"teacher": {0: result((10, 20, 30), (40, 50, 60)),
                           1: result((14, 20, 36), (40, 54, 60))},
               "student_takd": {3: result((1, 2, 3), (4, 5, 6))}}
    summary = summarise(results)
    assert [entry["key"] for entry in summary] == ["teacher", "student_takd"]  # table order
    teacher = summary[0]
    assert teacher["mean"]["ap3d_r40"] == [12.0, 20.0, 33.0]
    # sample std of (10, 14) = |10 - 14| / sqrt(2)
    assert teacher["std"]["ap3d_r40"] == pytest.approx([4 / np.sqrt(2), 0.0, 6 / np.sqrt(2)])
    assert teacher["std"]["apbev_r40"] == pytest.approx([0.0, 4 / np.sqrt(2), 0.0])
    assert summary[1]["std"]["ap3d_r40"] == [0.0, 0.0, 0.0]  # one seed: no spread
    text = ablation_markdown(summary, "monotakd-ablation --seeds 0 1", "test machine", "notes")
    assert "- Command: `monotakd-ablation --seeds 0 1`" in text
    assert "| LiDAR teacher | 12.00 ± 2.83 | 20.00 ± 0.00 | 33.00 ± 4.24 |" in text
    assert text.rstrip().endswith("| 1.00 ± 0.00 | 2.00 ± 0.00 | 3.00 ± 0.00 | 4.00 ± 0.00 | "
                                  "5.00 ± 0.00 | 6.00 ± 0.00 | 3 |")


def test_ablation_end_to_end(env: dict, tmp_path: Path) -> None:
    configs = tmp_path / "train"
    configs.mkdir()
    tiny = {**TINY_TRAIN, "max_steps": 1, "val_interval": 0}
    for stage in ("teacher", "ta", "student"):
        write_yaml(configs / f"{stage}.yaml", tiny)
    argv = ["--data", str(env["data"]), "--out", str(tmp_path / "ablation"), "--seeds", "0",
            "--model-config", str(env["model"]), "--train-config-dir", str(configs),
            "--device", "cpu"]
    written = run_ablation(build_parser().parse_args(argv), ["monotakd-ablation", *argv])
    report = json.loads(written["json"].read_text())
    assert [row["key"] for row in report["rows"]] == [row.key for row in ROWS]
    assert all(row["seeds"] == [0] for row in report["rows"])
    assert report["command"].startswith("monotakd-ablation --data ")
    markdown = written["markdown"].read_text()
    assert "TAKD without CMRD (IMD + response)" in markdown and "Machine: " in markdown
    seed_dir = tmp_path / "ablation" / "seed_0"
    assert sorted(p.name for p in seed_dir.iterdir()) == sorted(row.key for row in ROWS)
    # Students distilled from this seed's teacher and TA; the student log shows the terms.
    header = (seed_dir / "student_takd" / "train_log.csv").read_text().splitlines()[0]
    assert "imd" in header and "cmrd" in header
    assert "cmkd" in (seed_dir / "student_cmkd" / "train_log.csv").read_text().splitlines()[0]
    # "TAKD without CMRD" keeps the response terms: only CMRD differs from the full row.
    imd_row = (seed_dir / "student_imd" / "train_log.csv").read_text().splitlines()
    imd_terms = dict(zip(imd_row[0].split(","), imd_row[-1].split(","), strict=True))
    assert float(imd_terms["resp_cls"]) > 0.0

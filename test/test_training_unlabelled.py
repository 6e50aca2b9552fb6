"""Training with frames without labels: hidden-label splits, raw drives, frozen BatchNorm."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
from helpers_distill import write_models
from training_fixtures import (
    TINY_MODEL,
    TINY_TRAIN,
    write_tiny_kitti,
    write_tiny_raw_drive,
    write_yaml,
)

from monotakd_ros.data.batch import collate_frames
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter
from monotakd_ros.errors import ConfigError, DatasetError
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config
from monotakd_ros.training.data_loading import (
    build_stage_data,
    build_train_dataset,
    build_train_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.runner import StageRequest, run_stage
from monotakd_ros.training.stages import build_stage
from monotakd_ros.training.step import batchnorm_layers
from monotakd_ros.training.trainer import train

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
GT_TERMS = ("det_cls", "det_box", "det_dir")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unlabelled")
    data = write_tiny_kitti(root / "kitti", num_train=6, num_val=1)
    ids = [f"{i:06d}" for i in range(7)]
    KittiObjectWriter(data, "training").write_image_sets(
        {"train": ids[:4], "extra": ids[4:6], "val": ids[6:], "bad": ids[3:5]})
    no_flip = {**TINY_TRAIN, "augment": {"hflip_probability": 0.0}}
    return {"data": data, "model": write_yaml(root / "model.yaml", TINY_MODEL),
            "train": write_yaml(root / "train.yaml", {**no_flip, "max_steps": 2}),
            "drive": write_tiny_raw_drive(root / "raw", num_frames=2),
            **write_models(root / "models")}


def _spec(tiny: dict[str, Path]):  # noqa: ANN202
    return input_spec_for(load_model_config(tiny["model"]))


def test_hidden_label_split_joins_as_unlabelled_frames(tiny: dict[str, Path]) -> None:
    dataset = build_train_dataset(tiny["data"], "train", _spec(tiny),
                                  hidden_label_split="extra")
    samples = [dataset[i] for i in range(len(dataset))]
    assert [s.frame_id for s in samples] == ["000000", "000001", "000002", "000003",
                                            "000004", "000005"]
    assert [s.has_labels for s in samples] == [True] * 4 + [False] * 2
    assert all(len(s.gt_boxes_lidar) == 0 for s in samples[4:])
    # the same frames, labels visible: same image, and they do have boxes
    visible = build_train_dataset(tiny["data"], "extra", _spec(tiny))
    assert torch.equal(torch.as_tensor(visible[0].image), torch.as_tensor(samples[4].image))
    assert len(visible[0].gt_boxes_lidar) >= 1


def test_hidden_label_split_errors_name_the_problem(tiny: dict[str, Path]) -> None:
    with pytest.raises(DatasetError, match=r"'bad' shares 1 frame.*000003"):
        build_train_dataset(tiny["data"], "train", _spec(tiny), hidden_label_split="bad")
    with pytest.raises(ConfigError, match="hidden_label_split: 'val' is also"):
        TrainConfig(hidden_label_split="val")
    cfg = dataclasses.replace(load_train_config(tiny["train"]), hidden_label_split="extra")
    model_cfg = load_model_config(tiny["model"])
    stage = build_stage("ta", model_cfg, input_spec_for(model_cfg), cfg.detection)
    with pytest.raises(ConfigError, match="only the student stage.*'ta'"):
        build_stage_data(stage, tiny["data"], (), cfg, CPU, None)
    # a hidden split must not hold validation frames either
    KittiObjectWriter(tiny["data"], "training").write_image_sets({"leaky": ["000005", "000006"]})
    student = _student(tiny)
    leaky = dataclasses.replace(cfg, hidden_label_split="leaky")
    with pytest.raises(DatasetError, match=r"'leaky' shares 1 frame\(s\) with val_split 'val', "
                                           r"e.g. 000006"):
        build_stage_data(student, tiny["data"], (), leaky, CPU, None)


def _bn_state(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in batchnorm_layers(model) for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_freeze_bn_keeps_running_statistics_while_weights_train(
        tiny: dict[str, Path], tmp_path: Path, freeze_bn: bool) -> None:
    model_cfg = load_model_config(tiny["model"])
    cfg = dataclasses.replace(load_train_config(tiny["train"]), freeze_bn=freeze_bn)
    seed_everything(cfg.seed)
    spec = input_spec_for(model_cfg)
    stage = build_stage("ta", model_cfg, spec, cfg.detection)
    assert len(batchnorm_layers(stage.model)) > 5
    stats = _bn_state(stage.model)
    weights = [p.detach().clone() for p in stage.model.parameters()]
    bn_weights = [m.weight.detach().clone() for m in batchnorm_layers(stage.model)]
    data = build_train_loader(build_train_dataset(tiny["data"], "train", spec), cfg, CPU)
    train(stage, data, cfg, RunDir(tmp_path / "run"), CPU)
    unchanged = [torch.equal(a, b) for a, b in zip(stats, _bn_state(stage.model), strict=True)]
    assert all(unchanged) if freeze_bn else not any(unchanged)
    moved = [not torch.equal(a, p) for a, p in zip(weights, stage.model.parameters(),
                                                    strict=True)]
    assert sum(moved) > 0.9 * len(moved)  # the weights train either way
    # the BatchNorm affine weights are trained too
    assert not torch.equal(bn_weights[0], batchnorm_layers(stage.model)[0].weight)


def _student(tiny: dict[str, Path]):  # noqa: ANN202
    model_cfg = load_model_config(tiny["model"])
    cfg = TrainConfig()
    return build_stage("student", model_cfg, input_spec_for(model_cfg), cfg.detection,
                       cfg.distill_config(), tiny["teacher"], tiny["ta"])


def test_raw_frames_add_distillation_terms_without_diluting_the_gt_terms(
        tiny: dict[str, Path]) -> None:
    stage = _student(tiny)
    stage.model.eval()  # BatchNorm in train mode would mix the frames' statistics
    dataset = build_train_dataset(tiny["data"], "train", stage.spec, [tiny["drive"]])
    labelled = [dataset[0], dataset[1]]
    raw = [dataset[len(dataset) - 2], dataset[len(dataset) - 1]]
    assert [s.has_labels for s in labelled + raw] == [True, True, False, False]

    def terms(samples: list) -> dict[str, float]:  # noqa: ANN001
        batch = collate_frames(samples)
        with torch.no_grad():
            out = stage.loss_module(batch, stage.frozen_outputs(batch))
        return {k: float(v) for k, v in out.items()}

    alone, mixed, only_raw = terms(labelled), terms(labelled + raw), terms(raw)
    for name in GT_TERMS:
        assert mixed[name] == pytest.approx(alone[name], rel=1e-6, abs=1e-7)
        assert only_raw[name] == 0.0
    assert alone["det_cls"] > 0.01
    # the frozen teacher and TA give the raw frames their targets: the feature terms act
    assert only_raw["imd"] > 1e-4 and only_raw["cmrd"] > 0.0
    assert only_raw["total"] > 1e-3


def test_joint_training_from_the_start_on_labelled_and_raw_frames(
        tiny: dict[str, Path], tmp_path: Path) -> None:
    request = StageRequest(stage="student", model_config=tiny["model"],
                           train_config=tiny["train"], data=tiny["data"], out=tmp_path / "run",
                           unlabeled_drives=(tiny["drive"],), teacher=tiny["teacher"],
                           assistant=tiny["ta"], distill="takd", max_steps=3)
    summary = run_stage(request)
    assert summary.step == 3
    with (tmp_path / "run" / "train_log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["imd"]) > 0 and float(r["det_cls"]) >= 0 for r in rows)

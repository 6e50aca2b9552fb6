"""Stages: the student trains alone against a frozen teacher/TA; labels are optional."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from training_fixtures import (
    TINY_MODEL,
    TINY_TRAIN,
    write_tiny_kitti,
    write_tiny_raw_drive,
    write_yaml,
)

from monotakd_ros.data.batch import collate_frames
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io.checkpoint import load_model_weights, save_checkpoint
from monotakd_ros.models.build import build_teacher
from monotakd_ros.models.config import ModelConfig, ScnetConfig, load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config
from monotakd_ros.training.data_loading import (
    build_train_dataset,
    build_train_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.logging_utils import read_csv_rows
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.stages import Stage, build_stage, load_checked_checkpoint
from monotakd_ros.training.trainer import train

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
DETECTION_TERMS = {"det_cls", "det_box", "det_dir"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("stages")
    model_path = write_yaml(root / "model.yaml", TINY_MODEL)
    model_cfg = load_model_config(model_path)
    cfg = load_train_config(write_yaml(root / "train.yaml", {**TINY_TRAIN, "max_steps": 2}))
    spec = input_spec_for(model_cfg)
    seed_everything(3)
    checkpoints = {}
    for name in ("teacher", "ta"):  # freshly initialised frozen models are enough here
        stage = build_stage(name, model_cfg, spec, cfg.detection)
        checkpoints[name] = save_checkpoint(root / name, stage.model, stage.checkpoint_meta(0, 0))
    return {"root": root, "data": write_tiny_kitti(root / "kitti", num_train=4, num_val=1),
            "model_cfg": model_cfg, "cfg": cfg, "spec": spec, "ckpt": checkpoints}


def student_stage(env: dict, mode: str, with_assistant: bool = True) -> Stage:
    cfg: TrainConfig = dataclasses.replace(env["cfg"], distill=mode)
    return build_stage("student", env["model_cfg"], env["spec"], cfg.detection,
                       cfg.distill_config(), env["ckpt"]["teacher"],
                       env["ckpt"]["ta"] if with_assistant else None)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def file_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize(("mode", "num_frozen", "expected_terms"), [
    ("none", 0, set()),  # no distillation: neither frozen model is even loaded
    ("cmkd", 1, {"cmkd", "resp_cls", "resp_box", "resp_dir"}),  # CMKD-style: teacher, no TA
    ("takd", 2, {"imd", "cmrd", "resp_cls", "resp_box", "resp_dir"}),
])
def test_student_stage_trains_only_the_student(env: dict, tmp_path: Path, mode: str,
                                               num_frozen: int, expected_terms: set[str]) -> None:
    digests = {name: file_digest(path) for name, path in env["ckpt"].items()}
    stage = student_stage(env, mode, with_assistant=mode == "takd")
    frozen = [m for m in (stage.frozen.teacher, stage.frozen.assistant) if m is not None]
    assert len(frozen) == num_frozen
    before_frozen = [snapshot(m) for m in frozen]
    before_student = snapshot(stage.model)
    dataset = build_train_dataset(env["data"], "train", env["spec"])
    data = build_train_loader(dataset, env["cfg"], CPU)
    train(stage, data, env["cfg"], RunDir(tmp_path / mode), CPU)
    for model, before in zip(frozen, before_frozen, strict=True):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
        after = model.state_dict()
        # Weights and BN running statistics alike: eval mode never updates them.
        assert all(torch.equal(before[k], after[k]) for k in before)
    after_student = stage.model.state_dict()
    assert any(not torch.equal(before_student[k], after_student[k]) for k in before_student)
    assert {name: file_digest(path) for name, path in env["ckpt"].items()} == digests
    columns = set(read_csv_rows(tmp_path / mode / "train_log.csv")[0])
    distill_terms = {"imd", "cmrd", "cmkd", "resp_cls", "resp_box", "resp_dir", "depth"}
    assert DETECTION_TERMS <= columns
    assert columns & distill_terms == expected_terms


def test_unlabelled_frames_contribute_no_gt_loss(env: dict) -> None:
    stage = student_stage(env, "takd")
    dataset = build_train_dataset(env["data"], "train", env["spec"])
    labelled = dataset[0]
    unlabelled = dataclasses.replace(dataset[1], has_labels=False)
    stage.model.eval()  # per-frame BN statistics: the frames do not influence each other

    def terms_of(samples: list) -> dict[str, torch.Tensor]:
        batch = collate_frames(samples)
        return stage.loss_module(batch, stage.frozen_outputs(batch))

    only_unlabelled = terms_of([unlabelled, dataclasses.replace(unlabelled, frame_id="x")])
    for name in DETECTION_TERMS:
        assert only_unlabelled[name].item() == 0.0
    assert only_unlabelled["imd"].item() > 0  # distillation still works without labels
    stage.model.zero_grad()
    only_unlabelled["det_cls"].backward()
    assert all(p.grad is None or not p.grad.any() for p in stage.model.parameters())
    # In a mixed batch the GT terms are those of the labelled frame, averaged over the labelled
    # frames only: the unlabelled one does not halve them.
    alone = terms_of([labelled, labelled])
    mixed = terms_of([labelled, unlabelled])
    for name in DETECTION_TERMS:
        assert mixed[name].item() == pytest.approx(alone[name].item(), rel=1e-5)


def test_unlabelled_raw_drives_mix_into_the_student_stage(env: dict, tmp_path: Path) -> None:
    drive = write_tiny_raw_drive(tmp_path / "raw", num_frames=4)
    dataset = build_train_dataset(env["data"], "train", env["spec"], unlabeled_drives=[drive])
    assert len(dataset) == 8
    assert [dataset[i].has_labels for i in (0, 3, 4, 7)] == [True, True, False, False]
    assert len(dataset[5].points) > 0 and dataset[5].depth_map.max() > 0  # LiDAR for targets
    cfg = dataclasses.replace(env["cfg"], batch_size=4, max_steps=2)
    data = build_train_loader(dataset, cfg, CPU)
    summary = train(student_stage(env, "takd"), data, cfg, RunDir(tmp_path / "run"), CPU)
    assert summary.step == 2 and summary.final_losses["imd"] > 0


def test_frozen_checkpoints_are_validated(env: dict, tmp_path: Path) -> None:
    distill = dataclasses.replace(env["cfg"], distill="takd").distill_config()

    def build(teacher: Path | None, assistant: Path | None,
              model_cfg: ModelConfig | None = None) -> Stage:
        return build_stage("student", model_cfg or env["model_cfg"], env["spec"],
                           env["cfg"].detection, distill, teacher, assistant)

    with pytest.raises(CheckpointError, match=r"ta: is a 'ta' checkpoint, expected a 'teacher'"):
        build(env["ckpt"]["ta"], env["ckpt"]["ta"])
    wider = dataclasses.replace(env["model_cfg"], bev_channels=16)
    with pytest.raises(CheckpointError,
                       match=r"model config differs .*bev_channels: checkpoint 8 vs config 16"):
        build(env["ckpt"]["teacher"], env["ckpt"]["ta"], wider)
    # A student module the teacher never runs may change: the teacher still loads, the TA not.
    with_scnet = dataclasses.replace(env["model_cfg"], scnet=ScnetConfig(blocks=1))
    with pytest.raises(CheckpointError, match=r"ta: model config differs .*\(1 keys\): "
                                              r"scnet.blocks: checkpoint 0 vs config 1"):
        build(env["ckpt"]["teacher"], env["ckpt"]["ta"], with_scnet)
    loaded = load_checked_checkpoint(env["ckpt"]["teacher"], "teacher", with_scnet,
                                     build_teacher(with_scnet))
    reference = build_teacher(env["model_cfg"])
    load_model_weights(env["ckpt"]["teacher"], reference)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                  reference.state_dict().values(), strict=True))
    # Post-processing is not architecture: a TA loads at another score threshold and NMS IoU.
    rethresholded = dataclasses.replace(env["model_cfg"], postprocess=dataclasses.replace(
        env["model_cfg"].postprocess, score_threshold=0.5, nms_iou_threshold=0.3))
    stage = build(env["ckpt"]["teacher"], env["ckpt"]["ta"], rethresholded)
    assert stage.frozen.assistant is not None
    with pytest.raises(CheckpointError, match=r"missing/teacher: checkpoint not found"):
        build(tmp_path / "missing" / "teacher", env["ckpt"]["ta"])
    with pytest.raises(ConfigError, match=r"need the TA; pass --assistant"):
        build(env["ckpt"]["teacher"], None)
    none = dataclasses.replace(env["cfg"], distill="none").distill_config()
    stage = build_stage("student", env["model_cfg"], env["spec"], env["cfg"].detection, none)
    assert stage.frozen.teacher is None and stage.frozen.assistant is None
    with pytest.raises(ConfigError, match=r"stage: expected one of .* got 'teachr'"):
        build_stage("teachr", env["model_cfg"], env["spec"], env["cfg"].detection)


def test_the_depth_loss_weighs_the_cells_of_the_batch_s_labelled_objects(env: dict) -> None:
    def depth_term(foreground_weight: float, samples: list) -> float:
        overrides = {"depth_weight": 1.0, "depth_foreground_weight": foreground_weight}
        cfg = dataclasses.replace(env["cfg"], distill="none", distill_overrides=overrides)
        seed_everything(0)
        stage = build_stage("student", env["model_cfg"], env["spec"], cfg.detection,
                            cfg.distill_config())
        stage.model.eval()
        batch = collate_frames(samples)
        return stage.loss_module(batch, stage.frozen_outputs(batch))["depth"].item()

    dataset = build_train_dataset(env["data"], "train", env["spec"])
    labelled = [dataset[0], dataset[1]]
    assert all(len(s.gt_boxes_lidar) > 0 for s in labelled)
    assert depth_term(12.0, labelled) != pytest.approx(depth_term(0.0, labelled), rel=1e-3)
    # Without boxes every cell weighs 1: the same loss as without the option.
    no_boxes = [dataclasses.replace(s, gt_boxes_lidar=s.gt_boxes_lidar[:0],
                                    gt_classes=s.gt_classes[:0]) for s in labelled]
    assert depth_term(12.0, no_boxes) == pytest.approx(depth_term(0.0, no_boxes), rel=1e-6)

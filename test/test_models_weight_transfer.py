"""Specification of --init-from across stages (TA → student) and architecture-change refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from helpers_models import tiny_config

from monotakd_ros.distill.config import DetectionLossWeights, distill_preset
from monotakd_ros.errors import CheckpointError
from monotakd_ros.model_io.checkpoint import META_FILE, save_checkpoint
from monotakd_ros.models import build_assistant, build_student
from monotakd_ros.models.config import ScnetConfig
from monotakd_ros.models.weight_transfer import transfer_matching_weights
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.stages import build_stage, initialise_from, load_checked_checkpoint


def _saved_stage(path: Path, name: str, cfg: object, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    stage = build_stage(name, cfg, input_spec_for(cfg), DetectionLossWeights(),  # type: ignore
                        distill_preset("none"))
    save_checkpoint(path, stage.model, stage.checkpoint_meta(step=0, epoch=0))
    return path


def test_ta_to_student_loads_shared_tensors_and_names_the_rest() -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    ta, student = build_assistant(cfg), build_student(cfg)
    report = transfer_matching_weights(ta, student)
    student_keys, ta_keys = set(student.state_dict()), set(ta.state_dict())
    assert set(report.loaded) == student_keys & ta_keys
    assert set(report.absent_in_source) == student_keys - ta_keys
    # the small trunk has no separate depth stage: only the depth head is the student's own
    assert {k.split(".")[0] for k in report.absent_in_source} == {"depth_head"}
    assert report.shape_mismatch == []
    assert report.unused_in_source == sorted(ta_keys - student_keys)
    for name in report.loaded:
        torch.testing.assert_close(student.state_dict()[name], ta.state_dict()[name])
    for name in report.absent_in_source:
        assert name in report.summary()  # every skipped tensor is named, never truncated


def test_shape_mismatches_are_skipped_and_named() -> None:
    ta = build_assistant(tiny_config(bev_channels=16))
    student = build_student(tiny_config(bev_channels=8))
    before = student.collapse_visual.conv.weight.detach().clone()
    report = transfer_matching_weights(ta, student)
    assert "collapse_visual.conv.weight: checkpoint (16, 32, 1, 1) vs model (8, 32, 1, 1)" in (
        report.shape_mismatch)
    torch.testing.assert_close(student.collapse_visual.conv.weight, before)
    assert "reduce.0.weight" in report.loaded  # image-side layers still fit
    assert all(entry.split(":")[0] in report.summary() for entry in report.shape_mismatch)


def test_init_from_a_ta_checkpoint_starts_the_student(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny_config()
    ckpt = _saved_stage(tmp_path / "ta", "ta", cfg, seed=1)
    torch.manual_seed(2)
    student = build_student(cfg)
    with caplog.at_level(logging.INFO, logger="monotakd_ros.training.stages"):
        report = initialise_from(ckpt, "student", cfg, student)
    assert report is not None and report.loaded
    ta = load_checked_checkpoint(ckpt, "ta", cfg, build_assistant(cfg))
    torch.testing.assert_close(student.head.cls.weight, ta.head.cls.weight)
    assert "depth_head.logits.weight (absent from the checkpoint)" in caplog.text
    teacher_ckpt = _saved_stage(tmp_path / "teacher", "teacher", cfg)
    with pytest.raises(CheckpointError, match="is a 'teacher' checkpoint, expected a 'student'"):
        initialise_from(teacher_ckpt, "student", cfg, build_student(cfg))


def test_checkpoint_predating_a_module_is_refused_naming_the_change(tmp_path: Path) -> None:
    """An old checkpoint (no scnet keys in its config) against a config with SCNet on."""
    old_cfg = tiny_config()
    ckpt = _saved_stage(tmp_path / "old", "student", old_cfg)
    meta_path = ckpt / META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["model_config"]["scnet"]  # as written before the key existed
    meta_path.write_text(json.dumps(meta))
    # Same architecture: the missing key takes its default and the checkpoint loads.
    load_checked_checkpoint(ckpt, "student", old_cfg, build_student(old_cfg))
    new_cfg = tiny_config(scnet=ScnetConfig(blocks=2, pooling=2))
    with pytest.raises(CheckpointError, match=r"scnet\.blocks: checkpoint 0 vs config 2 "
                                              r"\(the checkpoint predates this key"):
        load_checked_checkpoint(ckpt, "student", new_cfg, build_student(new_cfg))

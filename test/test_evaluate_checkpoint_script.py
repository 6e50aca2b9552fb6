"""scripts/evaluate_checkpoint.py: every class of a checkpoint on a split; bad input → 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from training_fixtures import TINY_MODEL, write_tiny_kitti, write_yaml

from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "evaluate_checkpoint.py"
_spec = importlib.util.spec_from_file_location("evaluate_checkpoint", _SCRIPT)
script = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(script)  # type: ignore[union-attr]


@pytest.fixture()
def random_student(tmp_path: Path) -> tuple[ModelConfig, Path, Path]:
    """The tiny model's config, an untrained student checkpoint and a 3-frame val split."""
    model_cfg = load_model_config(write_yaml(tmp_path / "model.yaml", TINY_MODEL))
    data = write_tiny_kitti(tmp_path / "kitti", num_train=2, num_val=3, cars_per_frame=2)
    return model_cfg, make_random_student_checkpoint(tmp_path / "student", model_cfg), data


def test_scores_every_class_and_refuses_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        random_student: tuple[ModelConfig, Path, Path]) -> None:
    model_cfg, checkpoint, data = random_student
    out = tmp_path / "scores.json"
    assert script.main([str(checkpoint), "--data", str(data), "--split", "val",
                        "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert (scores["stage"], scores["split"], scores["frames"]) == ("student", "val", 3)
    assert set(scores["ap_r40"]) == {"Car", *model_cfg.head.class_names}
    # An untrained head scores every box at its prior: no true positive at IoU 0.7.
    assert scores["ap_r40"]["Car"]["3d"] == [0.0, 0.0, 0.0]
    assert "Car         AP3D R40" in capsys.readouterr().out
    assert script.main([str(tmp_path / "missing"), "--data", str(data)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert script.main([str(checkpoint), "--data", str(data), "--split", "nosuch"]) == 2


def test_post_processing_can_be_overridden(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        random_student: tuple[ModelConfig, Path, Path]) -> None:
    model_cfg, checkpoint, data = random_student
    out = tmp_path / "scores.json"
    assert script.main([str(checkpoint), "--data", str(data), "--split", "val", "--json",
                        str(out), "--score-threshold", "0.35", "--nms-iou", "0.5"]) == 0
    used = json.loads(out.read_text())["postprocess"]
    assert (used["score_threshold"], used["nms_iou_threshold"]) == (0.35, 0.5)
    assert used["max_detections"] == model_cfg.postprocess.max_detections  # not overridden
    assert script.main([str(checkpoint), "--data", str(data), "--split", "val", "--json",
                        str(out)]) == 0
    assert json.loads(out.read_text())["postprocess"]["score_threshold"] == \
        model_cfg.postprocess.score_threshold
    assert script.main([str(checkpoint), "--data", str(data), "--score-threshold", "1.5"]) == 2
    assert "score_threshold: must be in [0, 1), got 1.5" in capsys.readouterr().err

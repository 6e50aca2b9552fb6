"""scripts/ship_default_student.py: weights, provenance that rebuilds the chain, honest card."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_yaml

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ship_default_student.py"
_spec = importlib.util.spec_from_file_location("ship_default_student", _SCRIPT)
ship = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(ship)  # type: ignore[union-attr]


def _run(root: Path, stage: str, command: list[str], model: dict, train: dict, step: int) -> Path:
    checkpoint = root / stage / "checkpoints" / "last"
    checkpoint.mkdir(parents=True)
    (checkpoint / "meta.json").write_text(json.dumps({"stage": stage, "step": step}))
    (root / stage / "run_config.json").write_text(json.dumps(
        {"stage": stage, "command": command, "model_config": model, "train_config": train}))
    return checkpoint


def _scores(checkpoint: Path, car_moderate: float, split: str = "test") -> dict:
    return {"checkpoint": str(checkpoint), "stage": "student", "step": 7, "split": split,
            "frames": 5, "ap_r40": {name: {"3d": [1.0, car_moderate, 3.0],
                                           "bev": [4.0, 5.0, 6.0]}
                                    for name in ("Car", "Pedestrian", "Cyclist")}}


def test_ships_weights_provenance_and_card(tmp_path: Path) -> None:
    model_cfg = load_model_config(write_yaml(tmp_path / "model.yaml", TINY_MODEL))
    model = dataclass_to_dict(model_cfg)
    train = dataclass_to_dict(load_train_config(write_yaml(tmp_path / "train.yaml", TINY_TRAIN),
                                                max_steps=9, seed=3))
    runs = tmp_path / "runs"
    teacher = _run(runs, "teacher", ["monotakd-train", "teacher"], model, train, 11)
    ta = _run(runs, "ta", ["monotakd-train", "ta"], model, train, 12)
    student = make_random_student_checkpoint(runs / "student" / "checkpoints" / "best",
                                             model_cfg)
    (runs / "student" / "run_config.json").write_text(json.dumps({
        "stage": "student", "model_config": model, "train_config": train,
        "command": ["monotakd-train", "student", "--teacher", str(teacher), "--assistant",
                    str(ta), "--init-from", str(ta)]}))
    (runs / "student" / "val_log.csv").write_text(
        "step,car_ap3d_r40_moderate\n250,1.6344\n500,6.33255\n")
    test_json, baseline_json = tmp_path / "test.json", tmp_path / "baseline.json"
    test_json.write_text(json.dumps(_scores(student, 10.0)))
    baseline_json.write_text(json.dumps(_scores(tmp_path / "old", 4.0)))
    out = tmp_path / "shipped"
    assert ship.main([str(student), "--test-json", str(test_json), "--baseline-json",
                      str(baseline_json), "--out", str(out)]) == 0
    assert (out / "model.safetensors").read_bytes() == (student / "model.safetensors").read_bytes()
    for stage in ("teacher", "ta", "student"):  # what monotakd-train reads back, unchanged
        path = out / "provenance"
        assert dataclass_to_dict(load_model_config(path / f"{stage}_model.yaml")) == model
        assert dataclass_to_dict(load_train_config(path / f"{stage}_train.yaml")) == train
    card = (out / "MODEL_CARD.md").read_text()
    assert "| Car | 1.00 | 10.00 | 3.00 | 4.00 | 5.00 | 6.00 |" in card
    assert "Car AP3D R40 Moderate 4.00: this one is 2.50× that" in card
    assert "teacher 11, TA 12, student 0 (batch" in card
    assert "Car AP3D R40 Moderate, the selection metric):\nstep 250: 1.63, step 500: 6.33." in card
    assert "--teacher runs/teacher/checkpoints/last" in card
    assert "--init-from runs/ta/checkpoints/last" in card
    assert json.loads((out / "test_metrics.json").read_text())["ap_r40"]["Car"]["3d"][1] == 10.0
    # Scores of another checkpoint, or a baseline from other frames, are refused.
    test_json.write_text(json.dumps(_scores(teacher, 10.0)))
    assert ship.main([str(student), "--test-json", str(test_json), "--out", str(out)]) == 2
    test_json.write_text(json.dumps(_scores(student, 10.0)))
    baseline_json.write_text(json.dumps(_scores(tmp_path / "old", 4.0, split="val")))
    with pytest.raises(SystemExit, match="another split"):
        ship.main([str(student), "--test-json", str(test_json), "--baseline-json",
                   str(baseline_json), "--out", str(out)])

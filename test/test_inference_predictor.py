"""StudentPredictor: checkpoint validation, input checks and camera-frame boxes."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_detector import (
    KITTI_P2,
    LOW_SCORE,
    detector_test_config,
    road_image,
    write_test_checkpoint,
)

from monotakd_ros import resources
from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import CalibrationError, CheckpointError, ConfigError, ImageEncodingError
from monotakd_ros.inference import StudentPredictor
from monotakd_ros.inference.drawing import draw_boxes_cam
from monotakd_ros.model_io.checkpoint import CheckpointMeta, save_checkpoint
from monotakd_ros.models.build import build_student
from monotakd_ros.training.data_loading import input_spec_for


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> StudentPredictor:
    return StudentPredictor.from_checkpoint(checkpoint, device="cpu", score_threshold=LOW_SCORE,
                                            max_detections=30)


def test_boxes_come_back_in_the_camera_frame_with_anchor_shapes(
        predictor: StudentPredictor) -> None:
    # An untrained head barely moves its anchors, so every box must be an anchor seen from the
    # camera: LiDAR centre on a cell centre, at its anchor's height, with its anchor's size.
    # (Any anchor may score any class, so the anchor is found by size, not by class name.)
    cfg = detector_test_config()
    detections = predictor.predict(road_image(0), KITTI_P2)
    assert 0 < len(detections) <= 30
    assert set(detections.class_names) <= set(cfg.head.class_names)
    T_rect_from_lidar = np.array(cfg.nominal_T_rect_from_lidar)
    for box in detections.boxes_cam:
        x, y, z, length, height, width, ry = box
        centre_rect = np.array([x, y - height / 2.0, z, 1.0])  # label y is the bottom, y down
        centre_lidar = np.linalg.solve(T_rect_from_lidar, centre_rect)[:3]
        size_error = [np.abs(np.subtract([length, width, height], a.size_lwh_m)).max()
                      for a in cfg.head.anchors]
        assert min(size_error) < 0.05
        anchor = cfg.head.anchors[int(np.argmin(size_error))]
        assert centre_lidar[2] == pytest.approx(anchor.bottom_z_m + anchor.size_lwh_m[2] / 2,
                                                abs=0.05)
        for value, low in ((centre_lidar[0], cfg.grid.x_range_m[0]),
                           (centre_lidar[1], cfg.grid.y_range_m[0])):
            cells = (value - low) / cfg.grid.cell_m - 0.5
            assert abs(cells - round(cells)) < 0.1
        yaw = -ry - math.pi / 2  # anchors have yaw 0 or pi/2 (direction may flip by pi)
        assert min(abs(math.remainder(yaw - r, math.pi)) for r in (0.0, math.pi / 2)) < 0.05


def test_scores_thresholds_and_determinism(checkpoint: Path,
                                          predictor: StudentPredictor) -> None:
    image = road_image(1)
    first, second = predictor.predict(image, KITTI_P2), predictor.predict(image, KITTI_P2)
    np.testing.assert_array_equal(first.boxes_cam, second.boxes_cam)
    assert np.all(np.diff(first.scores) <= 0.0) and np.all(first.scores > LOW_SCORE)
    as_float = predictor.predict(image.astype(np.float64), KITTI_P2)
    np.testing.assert_array_equal(as_float.boxes_cam, first.boxes_cam)
    few = StudentPredictor.from_checkpoint(checkpoint, device="cpu", score_threshold=LOW_SCORE,
                                           max_detections=4).predict(image, KITTI_P2)
    assert len(few) == 4
    np.testing.assert_array_equal(few.scores, first.scores[:4])
    # Untrained scores are ~0.01: nothing passes 0.5.
    none = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                            score_threshold=0.5).predict(image, KITTI_P2)
    assert len(none) == 0 and none.boxes_cam.shape == (0, 7) and none.class_names == ()
    assert min(first.timing.prepare_ms, first.timing.network_ms, first.timing.decode_ms) > 0.0


@pytest.mark.parametrize(("image", "P", "error", "match"), [
    (np.full((375, 1242, 3), np.nan), KITTI_P2, ImageEncodingError, "NaN/inf pixel"),
    (np.zeros((375, 1242), np.uint8), KITTI_P2, ImageEncodingError, r"must be \(H, W, 3\)"),
    (np.zeros((375, 1242, 3), np.int16), KITTI_P2, ImageEncodingError, "uint8"),
    (np.zeros((375, 1242, 3), np.uint8), np.zeros((3, 4)), CalibrationError, "all zeros"),
    (np.zeros((375, 1242, 3), np.uint8), np.full((3, 4), np.inf), CalibrationError,
     "non-finite"),
    (np.zeros((375, 1242, 3), np.uint8), np.eye(3), CalibrationError, r"shape \(3, 4\)"),
    (np.zeros((375, 1242, 3), np.uint8), np.diag([0.0, 700.0, 1.0]) @ KITTI_P2,
     CalibrationError, "zero focal length"),
])
def test_bad_inputs_raise_specific_errors(predictor: StudentPredictor, image: np.ndarray,
                                          P: np.ndarray, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        predictor.predict(image, P)


def write_meta_edit(checkpoint: Path, target: Path, **changes: object) -> Path:
    """Copy of ``checkpoint`` at ``target`` with top-level meta.json keys replaced."""
    target.mkdir()
    for item in checkpoint.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    meta = json.loads((target / "meta.json").read_text())
    meta.update(changes)
    (target / "meta.json").write_text(json.dumps(meta))
    return target


def test_checkpoint_problems_name_the_path(checkpoint: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=re.escape(str(missing)) + ".*not found"):
        StudentPredictor.from_checkpoint(missing)
    teacher = write_meta_edit(checkpoint, tmp_path / "teacher", stage="teacher")
    with pytest.raises(CheckpointError, match=re.escape(str(teacher)) + ".*'teacher'"):
        StudentPredictor.from_checkpoint(teacher)
    model_config = dataclass_to_dict(detector_test_config())
    wider = write_meta_edit(checkpoint, tmp_path / "wider",
                            model_config={**model_config, "bev_channels": 24})
    with pytest.raises(CheckpointError, match="weights do not fit.*shape mismatches"):
        StudentPredictor.from_checkpoint(wider)
    unknown = write_meta_edit(checkpoint, tmp_path / "unknown",
                              model_config={**model_config, "bev_chanels": 24})
    with pytest.raises(CheckpointError, match="model_config does not fit.*bev_chanels"):
        StudentPredictor.from_checkpoint(unknown)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="broken/meta.json: invalid JSON"):
        StudentPredictor.from_checkpoint(tmp_path / "broken")


def test_class_names_must_match_the_head(tmp_path: Path) -> None:
    cfg = detector_test_config()
    spec = input_spec_for(cfg)
    meta = CheckpointMeta(stage="student", model_config=dataclass_to_dict(cfg),
                          input_spec=type(spec)(**{**vars(spec), "class_names": ("Car",)}))
    path = save_checkpoint(tmp_path / "one_class", build_student(cfg), meta)
    with pytest.raises(CheckpointError, match=r"class_names \['Car'\] differ"):
        StudentPredictor.from_checkpoint(path)


def test_settings_are_validated(checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="device: expected one of"):
        StudentPredictor.from_checkpoint(checkpoint, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            StudentPredictor.from_checkpoint(checkpoint, device="cuda")
    for kwargs, match in (({"score_threshold": 1.5}, "score_threshold"),
                          ({"nms_iou": 0.0}, "nms_iou"),
                          ({"max_detections": 0}, "max_detections")):
        with pytest.raises(ConfigError, match=match):
            StudentPredictor.from_checkpoint(checkpoint, device="cpu", **kwargs)
    with caplog.at_level(logging.WARNING, logger="monotakd_ros.inference.device"):
        cpu = StudentPredictor.from_checkpoint(checkpoint, device="cpu", fp16=True)
    assert cpu.fp16 is False and "fp16 requested on cpu: ignored" in caplog.text


def test_release_frees_the_model(checkpoint: Path) -> None:
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu")
    predictor.release()
    with pytest.raises(RuntimeError, match="released"):
        predictor.predict(road_image(0), KITTI_P2)


# GPU agreement (trained student, fp32 box for box, fp16 by AP): test_inference_gpu.py.


def test_debug_drawing_marks_boxes_in_front_only() -> None:
    image = np.zeros((375, 1242, 3), np.uint8)
    # A car 10 m ahead on the optical axis: its bottom-front edge projects by hand to
    # u = fx * x / z + cx, v = fy * y / z + cy with the KITTI P2 (Tx terms shift < 5 px).
    car = np.array([[0.0, 1.6, 10.0, 3.9, 1.56, 1.6, 0.0]])
    drawn = draw_boxes_cam(image, car, KITTI_P2, ["car"], [0.9])
    u = 721.5377 * (3.9 / 2) / 10.0 + 609.5593  # front face at x = +l/2 for ry = 0
    v_bottom = 721.5377 * 1.6 / 10.0 + 172.854
    v_top = 721.5377 * (1.6 - 1.56) / 10.0 + 172.854
    column = drawn[int(v_top) + 5:int(v_bottom) - 5, int(u) - 8:int(u) + 9]
    assert np.all(column.any(axis=(1, 2)))  # the vertical front edge is drawn
    # The nearest bottom corner (x = -l/2, z = 10 - w/2) lands at u ~ 456, v ~ 298.
    assert not drawn[:, :400].any() and not drawn[320:].any()  # nothing far from the box
    behind = np.array([[0.0, 1.6, -10.0, 3.9, 1.56, 1.6, 0.0]])
    assert not draw_boxes_cam(image, behind, KITTI_P2, ["car"], [0.9]).any()
    empty = draw_boxes_cam(image, np.zeros((0, 7)), KITTI_P2, [], [])
    assert empty is not image and not empty.any()


def test_default_model_prefers_an_installed_share(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert resources.default_model_path() == resources.SOURCE_ROOT / "models/default_student"
    index = tmp_path / "share/ament_index/resource_index/packages"
    index.mkdir(parents=True)
    (index / "monotakd_ros").write_text("")
    installed = tmp_path / "share/monotakd_ros/models/default_student"
    assert resources.default_model_path() == resources.SOURCE_ROOT / "models/default_student"
    installed.mkdir(parents=True)
    assert resources.default_model_path() == installed
    assert resources.share_path("config/detector.yaml") == (
        resources.SOURCE_ROOT / "config/detector.yaml")

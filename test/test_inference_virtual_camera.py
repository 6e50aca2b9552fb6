"""The virtual camera: any (image size, P) mapped onto the training camera, P carried exactly."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_detector import LOW_SCORE, road_image, write_test_checkpoint

from monotakd_ros.data.batch import placed_image, prepare_image
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.kitti_camera import KITTI_IMAGE_HW, KITTI_P2
from monotakd_ros.inference import StudentPredictor
from monotakd_ros.inference.virtual_camera import VirtualCamera, kitti_training_camera
from monotakd_ros.model_io.input_spec import InputSpec

SPEC = InputSpec(input_hw=(192, 640))  # the shipped student's input
TRAINING = kitti_training_camera(SPEC)


def pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 4) P of a rectified camera with no baseline."""
    return np.array([[fx, 0.0, cx, 0.0], [0.0, fy, cy, 0.0], [0.0, 0.0, 1.0, 0.0]])


def blob_image(hw: tuple[int, int], uv: tuple[float, float], sigma_px: float) -> np.ndarray:
    """Black BGR image with a bright Gaussian spot at sub-pixel ``uv``."""
    rows, cols = np.mgrid[0:hw[0], 0:hw[1]]
    spot = np.exp(-((cols - uv[0]) ** 2 + (rows - uv[1]) ** 2) / (2 * sigma_px**2))
    return np.repeat(np.round(250.0 * spot).astype(np.uint8)[:, :, None], 3, axis=2)


def test_training_camera_is_kitti_p2_after_the_training_resize() -> None:
    # By hand: 1242 -> 640 columns (sx = 640/1242), 375 -> round(193.24) = 193 rows.
    sx, sy = 640 / 1242, 193 / 375
    fx, fy = TRAINING.focal_xy_px
    cx, cy = TRAINING.principal_point_px
    assert (fx, fy) == pytest.approx((721.5377 * sx, 721.5377 * sy), abs=1e-9)
    assert (cx, cy) == pytest.approx((sx * 610.0593 - 0.5, sy * 173.354 - 0.5), abs=1e-9)


def test_kitti_image_maps_exactly_like_training() -> None:
    mapping = VirtualCamera(TRAINING).mapping(KITTI_P2, KITTI_IMAGE_HW)
    assert mapping.resized_hw == (193, 640) and mapping.offset_yx == (0, 0)
    image = road_image(3)
    expected_image, expected_P, _ = prepare_image(image, KITTI_P2, SPEC)
    np.testing.assert_array_equal(mapping.P_input, expected_P)
    assert torch.equal(placed_image(image, mapping.resized_hw, mapping.offset_yx, SPEC),
                       expected_image)
    assert mapping.warnings() == []


@pytest.mark.parametrize(("hw", "P"), [
    ((480, 640), pinhole(500.0, 500.0, 320.0, 240.0)),
    ((1080, 1920), pinhole(1400.0, 1400.0, 960.0, 540.0)),
    ((600, 800), pinhole(800.0, 600.0, 420.0, 250.0)),  # fx != fy: per-axis scale
    ((375, 640), pinhole(721.5377, 721.5377, 319.5, 172.85)),  # a 640x375 crop
])
def test_focal_length_and_principal_point_land_on_the_training_camera(
        hw: tuple[int, int], P: np.ndarray) -> None:
    mapping = VirtualCamera(TRAINING).mapping(P, hw)
    fx, fy = mapping.P_input[0, 0], mapping.P_input[1, 1]
    # The size is rounded to whole pixels: the focal length is the target's within half a pixel
    # of the image size.
    assert fx == pytest.approx(TRAINING.focal_xy_px[0], rel=0.5 / mapping.resized_hw[1])
    assert fy == pytest.approx(TRAINING.focal_xy_px[1], rel=0.5 / mapping.resized_hw[0])
    # The placement is an integer shift: the principal point lands within half a pixel.
    assert mapping.P_input[0, 2] == pytest.approx(TRAINING.principal_point_px[0], abs=0.5)
    assert mapping.P_input[1, 2] == pytest.approx(TRAINING.principal_point_px[1], abs=0.5)


@pytest.mark.parametrize(("hw", "P"), [
    ((480, 640), pinhole(500.0, 500.0, 320.0, 240.0)),  # shrunk
    ((240, 320), pinhole(250.0, 250.0, 160.0, 120.0)),  # enlarged by 1.49
    ((720, 1280), pinhole(1000.0, 1000.0, 640.0, 360.0)),  # shrunk 2.7x
])
def test_a_point_lands_where_the_carried_p_projects_it(hw: tuple[int, int],
                                                       P: np.ndarray) -> None:
    point_cam = np.array([1.3, 0.9, 14.0, 1.0])  # right of and below the optical axis
    u, v, w = P @ point_cam
    image = blob_image(hw, (u / w, v / w), sigma_px=4.0 * hw[1] / 320)
    mapping = VirtualCamera(TRAINING).mapping(P, hw)
    tensor = placed_image(image, mapping.resized_hw, mapping.offset_yx, SPEC)
    red = tensor[0].numpy() * SPEC.std[0] + SPEC.mean[0]  # undo the normalisation
    top, left, bottom, right = mapping.visible_window  # padding is the mean colour: leave out
    covered = np.zeros_like(red, dtype=bool)
    covered[mapping.offset_yx[0] + top:mapping.offset_yx[0] + bottom,
            mapping.offset_yx[1] + left:mapping.offset_yx[1] + right] = True
    red = np.where(covered, red, 0.0)
    rows, cols = np.mgrid[0:red.shape[0], 0:red.shape[1]]
    measured = ((red * cols).sum() / red.sum(), (red * rows).sum() / red.sum())
    u_in, v_in, w_in = mapping.P_input @ point_cam
    assert (u_in / w_in, v_in / w_in) == pytest.approx(measured, abs=0.05)


def test_share_seen_and_padding_of_a_4_3_camera() -> None:
    mapping = VirtualCamera(TRAINING).mapping(pinhole(500.0, 500.0, 320.0, 240.0), (480, 640))
    # By hand: 640 * 371.807 / 500 = 475.9 -> 476 columns, 480 * 371.351 / 500 = 356.497 -> 356
    # rows; all columns fit (164 padded), 192 of 356 rows are kept.
    assert mapping.resized_hw == (356, 476)
    assert mapping.seen_fraction == pytest.approx(192 / 356)
    assert mapping.padded_fraction == pytest.approx(1 - 476 / 640)
    u0, v0, u1, v1 = mapping.crop_window_px
    assert (u0, u1) == pytest.approx((0.0, 640.0))
    assert v1 - v0 == pytest.approx(192 * 480 / 356)
    # The road below the horizon (v = 240) is kept: the principal row lies inside the window.
    assert v0 < 240 < v1 and v1 > 350
    assert mapping.warnings() == []
    assert "476x356" in mapping.summary() and "54 %" in mapping.summary()


def test_cameras_far_from_training_are_warned_about_with_numbers() -> None:
    camera = VirtualCamera(TRAINING)
    telephoto = camera.mapping(pinhole(4000.0, 4000.0, 320.0, 240.0), (480, 640))
    text = " ".join(telephoto.warnings())
    # 640 * 371.8 / 4000 -> 59 columns (sx = 0.092), 45 rows: 2.2 % of the 640x192 view.
    assert "extreme resample sx=0.092" in text and "onto only 2.2 %" in text
    off_image = camera.mapping(pinhole(500.0, 500.0, -3000.0, 240.0), (480, 640))
    assert off_image.seen_fraction == 0.0
    assert any("sees only 0.0 %" in w for w in off_image.warnings())
    tiny = camera.mapping(pinhole(100.0, 100.0, 80.0, 60.0), (120, 160))  # enlarged 3.7x
    assert any("extreme resample sx=3.719" in w for w in tiny.warnings())


def test_horizon_placement_centres_the_columns_and_uses_the_given_row() -> None:
    P = pinhole(500.0, 500.0, 200.0, 240.0)  # principal point left of centre
    by_point = VirtualCamera(TRAINING).mapping(P, (480, 640))
    by_horizon = VirtualCamera(TRAINING, "horizon").mapping(P, (480, 640))
    assert by_horizon.offset_yx[0] == by_point.offset_yx[0]  # level camera: horizon = cy
    assert by_horizon.offset_yx[1] == round((640 - 476) / 2)
    assert by_point.seen_fraction < by_horizon.seen_fraction  # columns were cut on the left
    raised = VirtualCamera(TRAINING, "horizon", horizon_row_px=200.0).mapping(P, (480, 640))
    v_row = raised.P_input[1, 1] / 500.0 * (200.0 + 0.5) - 0.5 + raised.offset_yx[0]
    assert v_row == pytest.approx(TRAINING.principal_point_px[1], abs=0.5)


def test_bad_placement_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="virtual_camera_placement.*'middle'"):
        VirtualCamera(TRAINING, "middle")
    with pytest.raises(ConfigError, match="horizon_row_px.*nan"):
        VirtualCamera(TRAINING, "horizon", horizon_row_px=float("nan"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


def test_predictor_gives_todays_detections_on_a_kitti_image(checkpoint: Path) -> None:
    virtual = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                               score_threshold=LOW_SCORE)
    fit_width = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                                 score_threshold=LOW_SCORE,
                                                 camera_mode="fit_width")
    image = road_image(5)
    a, b = virtual.predict(image, KITTI_P2), fit_width.predict(image, KITTI_P2)
    assert len(a) > 0
    np.testing.assert_array_equal(a.boxes_cam, b.boxes_cam)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_predictor_logs_the_mapping_once_per_camera(checkpoint: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu")
    image = np.full((120, 160, 3), 90, np.uint8)
    P = pinhole(40.0, 40.0, 80.0, 60.0)  # a wide-angle camera: enlarged about 4.6 times
    with caplog.at_level(logging.INFO, logger="monotakd_ros.inference.predictor"):
        for _ in range(3):
            predictor.predict(image, P)
    summaries = [r for r in caplog.records if "virtual camera:" in r.getMessage()]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(summaries) == 1 and "160x120 image resampled" in summaries[0].getMessage()
    assert warnings == predictor.camera_mapping(P, (120, 160)).warnings()
    assert len(warnings) == 2 and "extreme resample" in warnings[0]
    with pytest.raises(ConfigError, match="camera_mode.*'stretch'"):
        StudentPredictor.from_checkpoint(checkpoint, device="cpu", camera_mode="stretch")

"""The detector node with a non-KITTI camera: mapping logged once, P and D warned, class ids."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from helpers_detector import LOW_SCORE, camera_pair, running_detector, write_test_checkpoint

IMAGE_TOPIC, INFO_TOPIC = "/any_camera/image_raw", "/any_camera/camera_info"
FRAME = "usb_cam"
HW = (120, 160)  # small: every best-effort message arrives


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


def pinhole(fx: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx, 0.0], [0.0, fx, cy, 0.0], [0.0, 0.0, 1.0, 0.0]])


def wait_for_log(node, text: str, timeout_s: float = 10.0) -> str:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while text not in node.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    return node.log()


def test_camera_mapping_warnings_and_class_ids(checkpoint: Path, tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (*HW, 3), dtype=np.uint8)
    with running_detector(tmp_path / "node.log", {
            "model_path": checkpoint, "device": "cpu", "cpu_threads": 1,
            "score_threshold": LOW_SCORE, "max_detections": 10, "image_topic": IMAGE_TOPIC,
            "camera_info_topic": INFO_TOPIC,
            "class_ids": "Car:vehicle,Pedestrian:person"}) as (node, client):
        # A sane 4:3 camera, but with distortion and P equal to K: an unrectified image.
        P = pinhole(90.0, 80.0, 60.0)

        def distorted(stamp: object) -> tuple[object, object]:
            msg, info = camera_pair(image, P, stamp, FRAME)
            info.d = [-0.3, 0.1, 0.0, 0.0, 0.0]
            info.k = [90.0, 0.0, 80.0, 0.0, 90.0, 60.0, 0.0, 0.0, 1.0]
            return msg, info

        _, found = client.send_until_detected(distorted)
        client.send_until_detected(distorted)
        ids = {r.hypothesis.class_id for d in found.detections for r in d.results}
        assert ids and ids <= {"vehicle", "person", "cyclist"}
        log = node.log()
        assert log.count("virtual camera: 160x120 image resampled") == 1
        assert log.count("CameraInfo has distortion D = [-0.3, 0.1, 0.0, 0.0, 0.0]") == 1
        # A P whose principal point lies far off the image: the model sees none of it.
        off = pinhole(90.0, -3000.0, 60.0)
        for _ in range(5):
            client.send(*camera_pair(image, off, client.node.get_clock().now().to_msg(), FRAME))
            client.executor.spin_once(timeout_sec=0.2)
        log = wait_for_log(node, "sees only 0.0 %")
        assert f"camera '{FRAME}': the model sees only 0.0 % of the image" in log
        assert log.count("virtual camera: 160x120 image resampled") == 2  # one per camera

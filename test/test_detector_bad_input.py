"""Bad camera input is answered with a log line naming the problem; the node keeps working."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from helpers_detector import (
    KITTI_P2,
    LOW_SCORE,
    DetectorClient,
    NodeProcess,
    camera_pair,
    half_size_frame,
    road_image,
    running_detector,
    write_test_checkpoint,
)
from sensor_msgs.msg import Image

from monotakd_ros.geometry.coord_frames import boxes_cam_to_body
from monotakd_ros.inference import StudentPredictor

IMAGE_TOPIC, INFO_TOPIC = "/bad_input/image_raw", "/bad_input/camera_info"
CAMERA_FRAME, BODY_FRAME = "camera_color_left", "base_link"
THROTTLE_S = 0.3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


@pytest.fixture(scope="module")
def running(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    with running_detector(tmp_path_factory.mktemp("node") / "node.log", {
        "model_path": checkpoint, "device": "cpu", "cpu_threads": 1,
        "score_threshold": LOW_SCORE, "max_detections": 10, "image_topic": IMAGE_TOPIC,
        "camera_info_topic": INFO_TOPIC, "output_frame": BODY_FRAME,
        "log_throttle_s": THROTTLE_S, "diagnostics_period_s": 0.5}) as node_and_client:
        yield node_and_client


GOOD_IMAGE, GOOD_P = half_size_frame(seed=7)


def good_pair(stamp: object) -> tuple[Image, object]:
    return camera_pair(GOOD_IMAGE, GOOD_P, stamp, CAMERA_FRAME)


# Bad frames are small: large best-effort messages are often lost by this machine's DDS, and
# the tests need each bad frame to arrive. Good frames are half-size KITTI frames.
SMALL_HW = (48, 160)


def raw_image(stamp: object, encoding: str, step: int, size: int) -> Image:
    msg = Image(height=SMALL_HW[0], width=SMALL_HW[1], encoding=encoding, step=step)
    msg.header.stamp, msg.header.frame_id = stamp, CAMERA_FRAME
    msg.data = bytes(size)
    return msg


def small_pair(stamp: object, P: np.ndarray = KITTI_P2, info_hw: tuple[int, int] | None = None,
               ) -> tuple[Image, object]:
    image = road_image(seed=8)[:SMALL_HW[0], :SMALL_HW[1]]
    return camera_pair(image, P, stamp, CAMERA_FRAME, info_hw=info_hw)


def nan_depth_pair(stamp: object) -> tuple[Image, object]:
    depth = np.full(SMALL_HW, np.nan, dtype=np.float32)
    return camera_pair(depth, KITTI_P2, stamp, CAMERA_FRAME, encoding="32FC1")


def p_with(value: float) -> np.ndarray:
    P = KITTI_P2.copy()
    P[0, 0] = value
    return P


BAD_INPUTS = {
    "unsupported_encoding": (
        lambda s: (raw_image(s, "yuv422", 2 * 160, 2 * 160 * 48), small_pair(s)[1]),
        "unsupported image encoding 'yuv422'"),
    "truncated_data": (
        lambda s: (raw_image(s, "bgr8", 3 * 160, 1000), small_pair(s)[1]),
        "image data has 1000 bytes but height 48 x step 480"),
    "float_image_with_nan": (nan_depth_pair, "encoding '32FC1' is not a colour image"),
    "camera_info_size_mismatch": (
        lambda s: small_pair(s, info_hw=(480, 640)),
        "CameraInfo is 640x480 but the image is 160x48"),
    "all_zero_P": (lambda s: small_pair(s, np.zeros((3, 4))), "CameraInfo.p is all zeros"),
    "nan_in_P": (lambda s: small_pair(s, p_with(np.nan)), "CameraInfo.p holds non-finite values"),
}


def send_until_logged(node: NodeProcess, client: DetectorClient,
                      make_pair: object) -> tuple[object, str]:
    """Send a fresh-stamped pair until the node's log names its stamp (a lost one is resent).

    Returns (stamp, the log lines naming it).
    """
    for _ in range(3):
        time.sleep(THROTTLE_S + 0.05)  # an earlier error of the same class is out of throttle
        stamp = client.node.get_clock().now().to_msg()
        client.send(*make_pair(stamp))
        stamp_text = f"{stamp.sec}.{stamp.nanosec:09d}"
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            client.spin(0.05)
            lines = [line for line in node.log().splitlines() if stamp_text in line]
            if lines:
                return stamp, "\n".join(lines)
    raise AssertionError(f"the node never reported a bad frame:\n{node.log()}")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_named_and_the_next_frame_is_processed(running, case: str) -> None:
    node, client = running
    make_bad, problem = BAD_INPUTS[case]
    bad_stamp, line = send_until_logged(node, client, make_bad)
    assert problem in line and "WARN" in line and line.count("\n") == 0
    good_stamp, msg = client.send_until_detected(good_pair)
    assert msg.header.stamp == good_stamp and len(msg.detections) > 0
    assert not client.detections_at(bad_stamp)
    assert node.proc.poll() is None


@pytest.mark.timing  # wall-clock rates and windows; CI runs it
def test_repeated_bad_input_is_throttled(running) -> None:
    node, client = running
    time.sleep(THROTTLE_S + 0.05)
    log_start = len(node.log())
    for _ in range(8):  # all within one throttle interval
        stamp = client.node.get_clock().now().to_msg()
        client.send(raw_image(stamp, "yuv422", 2 * 160, 2 * 160 * 48), small_pair(stamp)[1])
        client.spin(0.02)
    client.send_until_detected(good_pair)
    assert node.log()[log_start:].count("unsupported image encoding 'yuv422'") == 1


def test_images_without_camera_info_are_reported(running) -> None:
    node, client = running
    log_start = len(node.log())
    image = small_pair(client.node.get_clock().now().to_msg())[0]
    deadline = time.monotonic() + 1.6  # three diagnostics periods
    while time.monotonic() < deadline:
        image.header.stamp = client.node.get_clock().now().to_msg()
        client.send(image, None)
        client.spin(0.1)
    new_log = node.log()[log_start:]
    assert f"receiving images on {IMAGE_TOPIC} but no CameraInfo on {INFO_TOPIC}" in new_log
    assert "sensor-data QoS (best effort, keep last 1)" in new_log
    client.send_until_detected(good_pair)


def statuses_while_sending(client: DetectorClient, make_pair: object,
                           seconds: float = 1.6) -> list[object]:
    """Diagnostic statuses published while fresh pairs go out every 0.1 s (3 periods)."""
    start = len(client.received["diagnostics"])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.send(*make_pair(client.node.get_clock().now().to_msg()))
        client.spin(0.1)
    return [s for m in client.received["diagnostics"][start:] for s in m.status]


@pytest.mark.parametrize(("make_pair", "reason"), [
    (BAD_INPUTS["unsupported_encoding"][0], "none processed; bad input rate 1.00 > 0.50"),
    (lambda s: (small_pair(s)[0], None), "none processed; no CameraInfo"),
])
def test_diagnostics_are_error_when_images_come_but_none_is_processed(
        running, make_pair: object, reason: str) -> None:
    node, client = running
    statuses = statuses_while_sending(client, make_pair)
    assert statuses, "no diagnostics published"
    last = statuses[-1]  # its whole window lies inside the sending
    assert last.level == DiagnosticStatus.ERROR and reason in last.message, last.message
    client.send_until_detected(good_pair)


def test_camera_info_without_images_is_reported(running) -> None:
    node, client = running
    log_start = len(node.log())
    info = small_pair(client.node.get_clock().now().to_msg())[1]
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        info.header.stamp = client.node.get_clock().now().to_msg()
        client.send(None, info)
        client.spin(0.1)
    assert (f"receiving CameraInfo on {INFO_TOPIC} but no images on {IMAGE_TOPIC}"
            in node.log()[log_start:])
    client.send_until_detected(good_pair)


def test_body_frame_output_matches_offline_predictor(running, checkpoint: Path) -> None:
    node, client = running
    stamp, msg = client.send_until_detected(good_pair)
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                                 score_threshold=LOW_SCORE, max_detections=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the node process: the same float operations
    try:
        expected = predictor.predict(GOOD_IMAGE, GOOD_P)
    finally:
        torch.set_num_threads(threads)
    assert msg.header.frame_id == BODY_FRAME and msg.header.stamp == stamp
    assert len(msg.detections) == len(expected) > 0
    body = boxes_cam_to_body(expected.boxes_cam)  # centre (z, -x, h/2 - y), yaw -ry - pi/2
    for i, det in enumerate(msg.detections):
        p, q, s = det.bbox.center.position, det.bbox.center.orientation, det.bbox.size
        np.testing.assert_allclose([p.x, p.y, p.z], body.center[i], atol=1e-4)
        np.testing.assert_allclose([s.x, s.y, s.z], body.size[i], atol=1e-4)
        quat = np.array([q.x, q.y, q.z, q.w])
        sign = 1.0 if float(quat @ body.quat_xyzw[i]) >= 0 else -1.0
        np.testing.assert_allclose(quat, sign * body.quat_xyzw[i], atol=1e-4)
        assert det.header.frame_id == BODY_FRAME

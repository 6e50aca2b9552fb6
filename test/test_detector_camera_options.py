"""Detector input options: distortion warning, class ids, per-kind throttling, stamp offsets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sensor_msgs.msg import CameraInfo

from monotakd_ros.errors import ConfigError
from monotakd_ros.nodes.detector_params import output_class_ids, parse_class_ids
from monotakd_ros.ros.camera_input import distortion_warning
from monotakd_ros.ros.log_throttle import KindThrottle
from monotakd_ros.ros.pairing import LatestPairer

K = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]


def camera_info(d: list[float], p: list[float]) -> CameraInfo:
    return CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=d, k=K, p=p)


def test_distortion_with_a_k_like_p_is_warned_about_with_the_coefficients() -> None:
    k_like = [500.0, 0.0, 320.0, 0.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    rectified = [480.0, 0.0, 315.0, 0.0, 0.0, 480.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    text = distortion_warning(camera_info([-0.28, 0.07, 0.0, 0.0, 0.0], k_like))
    assert text is not None and "[-0.28, 0.07, 0.0, 0.0, 0.0]" in text and "plumb_bob" in text
    assert distortion_warning(camera_info([-0.28, 0.07, 0.0, 0.0, 0.0], rectified)) is None
    assert distortion_warning(camera_info([0.0] * 5, k_like)) is None  # already rectified
    assert distortion_warning(camera_info([], k_like)) is None


def test_class_ids_parse_map_and_default_to_lowercase() -> None:
    names = ("Car", "Pedestrian", "Cyclist")
    assert output_class_ids(None, names) == {"Car": "car", "Pedestrian": "pedestrian",
                                             "Cyclist": "cyclist"}
    mapping = parse_class_ids(" Car:vehicle.car , Pedestrian:person")
    assert output_class_ids(mapping, names) == {"Car": "vehicle.car", "Pedestrian": "person",
                                                "Cyclist": "cyclist"}
    assert parse_class_ids("  ") is None
    with pytest.raises(ConfigError, match="class_ids.*'Car'"):
        parse_class_ids("Car")
    with pytest.raises(ConfigError, match="class_ids.*each class once"):
        parse_class_ids("Car:a,Car:b")
    with pytest.raises(ConfigError, match=r"\['Truck'\] are not classes"):
        output_class_ids({"Truck": "truck"}, names)


def test_one_kind_of_warning_never_hides_another_and_says_what_it_held_back() -> None:
    throttle = KindThrottle(interval_s=5.0)
    assert throttle.admit("ImageEncodingError", "bad image", 0.0) == "bad image"
    assert throttle.admit("ImageEncodingError", "bad image", 1.0) is None
    assert throttle.admit("CameraInfoError", "bad info", 1.5) == "bad info"  # not hidden
    assert throttle.admit("ImageEncodingError", "bad image", 2.0) is None
    line = throttle.admit("ImageEncodingError", "bad image", 6.0)
    assert line == ("bad image [ImageEncodingError: 2 similar message(s) held back in the "
                    "last 6.0 s]")
    assert throttle.admit("ImageEncodingError", "bad image", 11.5) == "bad image"


def stamped(ns: int) -> SimpleNamespace:
    stamp = SimpleNamespace(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp))


def test_pairer_remembers_the_stamp_offset_of_an_unmatched_image() -> None:
    pairer = LatestPairer(slop_s=0.02)
    assert pairer.add_image(stamped(1_000_000_000)) is None
    assert pairer.add_camera_info(stamped(1_050_000_000)) is None  # 50 ms late: given up
    assert pairer.stats.images_unmatched == 1
    assert pairer.stats.last_unmatched_offset_ns == 50_000_000

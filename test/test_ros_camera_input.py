"""CameraInfo -> P checks: the node's answer to uncalibrated or mismatched cameras."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from monotakd_ros.errors import CameraInfoError
from monotakd_ros.ros.camera_input import projection_from_camera_info

P2 = [721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791, 0.0, 0.0, 1.0,
      0.002745884]


def info(p: list[float], width: int = 1242, height: int = 375) -> CameraInfo:
    msg = CameraInfo(width=width, height=height)
    msg.p = p
    return msg


def test_good_camera_info_gives_P() -> None:
    P = projection_from_camera_info(info(P2), (375, 1242))
    np.testing.assert_array_equal(P, np.array(P2).reshape(3, 4))
    # width/height 0 = not filled in by the driver: accepted
    assert projection_from_camera_info(info(P2, 0, 0), (375, 1242)).shape == (3, 4)


@pytest.mark.parametrize(("msg", "match"), [
    (info([0.0] * 12), "all zeros"),
    (info([float("nan")] + P2[1:]), "non-finite"),
    (info([0.0] + P2[1:]), "zero focal length"),
    (info(P2, 640, 480), "CameraInfo is 640x480 but the image is 1242x375"),
])
def test_bad_camera_info_is_named(msg: CameraInfo, match: str) -> None:
    with pytest.raises(CameraInfoError, match=match):
        projection_from_camera_info(msg, (375, 1242))


def test_wrong_length_is_named() -> None:
    class Short:
        p = P2[:11]
        width = height = 0

    with pytest.raises(CameraInfoError, match="has 11 values, expected 12"):
        projection_from_camera_info(Short(), (375, 1242))

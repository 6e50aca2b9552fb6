from __future__ import annotations

from sensor_msgs.msg import CameraInfo, Image

from monotakd_ros.ros.pairing import LatestPairer


def stamped(cls: type, sec: int, nanosec: int = 0):
    msg = cls()
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    return msg


def test_pairs_within_slop_even_when_info_is_10ns_off() -> None:
    pairer = LatestPairer(slop_s=0.01)
    assert pairer.add_camera_info(stamped(CameraInfo, 5, 10)) is None
    image = stamped(Image, 5, 0)
    pair = pairer.add_image(image)
    assert pair is not None and pair[0] is image
    assert pairer.stats.pairs == 1


def test_image_waits_for_a_later_camera_info() -> None:
    pairer = LatestPairer(slop_s=0.01)
    image = stamped(Image, 7)
    assert pairer.add_image(image) is None
    pair = pairer.add_camera_info(stamped(CameraInfo, 7, 5_000_000))
    assert pair is not None and pair[0] is image


def test_only_the_newest_waiting_image_is_kept() -> None:
    pairer = LatestPairer(slop_s=0.01)
    pairer.add_image(stamped(Image, 1))
    newest = stamped(Image, 2)
    pairer.add_image(newest)
    assert pairer.stats.images_replaced == 1
    assert pairer.add_camera_info(stamped(CameraInfo, 1)) is None  # the stale one is gone
    pair = pairer.add_camera_info(stamped(CameraInfo, 2))
    assert pair is not None and pair[0] is newest


def test_outside_slop_never_pairs_and_is_counted() -> None:
    pairer = LatestPairer(slop_s=0.01)
    assert pairer.add_camera_info(stamped(CameraInfo, 3, 0)) is None
    assert pairer.add_image(stamped(Image, 3, 20_000_000)) is None
    assert pairer.add_camera_info(stamped(CameraInfo, 3, 100_000_000)) is None
    assert pairer.stats.images_unmatched == 1
    assert pairer.stats.pairs == 0


def test_closest_info_wins() -> None:
    pairer = LatestPairer(slop_s=0.05)
    far = stamped(CameraInfo, 4, 40_000_000)
    near = stamped(CameraInfo, 4, 1_000_000)
    pairer.add_camera_info(far)
    pairer.add_camera_info(near)
    pair = pairer.add_image(stamped(Image, 4, 0))
    assert pair is not None and pair[1] is near

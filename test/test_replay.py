"""monotakd_replay over real DDS: stamps, order, latched /tf_static, /clock and rate scaling."""

from __future__ import annotations

import re
import signal
import time

import pytest
import rclpy
from helpers_replay_eval import start, stop, wait_for_exit, write_eval_bag
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Empty
from tf2_msgs.msg import TFMessage

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.errors import BagError
from monotakd_ros.nodes.replay import parse_subscriber_waits

NUM_FRAMES = 8


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    return write_eval_bag(tmp_path_factory.mktemp("replay"), num_frames=NUM_FRAMES)


def spin_until(node, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return done()


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@pytest.mark.timing  # wall-clock rates and windows; CI runs it
@pytest.mark.parametrize(("rate", "start_paused"), [(0.5, False), (4.0, True)])
def test_replay_publishes_the_recorded_stream_at_the_scaled_rate(bag, rate: float,
                                                                 start_paused: bool) -> None:
    rclpy.init()
    node = rclpy.create_node("test_replay_receiver")
    images: list[tuple[int, float, Image]] = []
    infos: list[int] = []
    clocks: list[int] = []
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, layout.IMAGE_TOPIC, lambda m: images.append(
        (stamp_ns(m.header), time.monotonic(), m)), reliable)
    node.create_subscription(CameraInfo, layout.CAMERA_INFO_TOPIC,
                             lambda m: infos.append(stamp_ns(m.header)), reliable)
    node.create_subscription(Clock, "/clock", lambda m: clocks.append(
        m.clock.sec * 1_000_000_000 + m.clock.nanosec),
        QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT))
    replay = start("-m", "monotakd_ros.nodes.replay", str(bag.bag), "--rate", str(rate),
                   "--topics", layout.IMAGE_TOPIC, layout.CAMERA_INFO_TOPIC,
                   layout.TF_STATIC_TOPIC, "--clock", "20", "--linger", "3",
                   "--wait-for-subscribers", f"{layout.IMAGE_TOPIC}:1",
                   f"{layout.CAMERA_INFO_TOPIC}:1", "/clock:1",
                   *(["--start-paused"] if start_paused else []))
    tf_static: list[TFMessage] = []
    try:
        if start_paused:
            resume = node.create_publisher(Empty, "/monotakd_replay/resume", 10)
            assert spin_until(node, lambda: resume.get_subscription_count() == 1, 20.0)
            spin_until(node, lambda: False, 1.0)
            assert not images, "a paused replay published"
            resume.publish(Empty())
        assert spin_until(node, lambda: len(images) == NUM_FRAMES and len(infos) == NUM_FRAMES
                          or replay.poll() is not None, 30.0)
        assert len(images) == NUM_FRAMES and len(infos) == NUM_FRAMES, (
            f"got {len(images)} images, {len(infos)} infos; replay status {replay.poll()}")
        # Subscribing only now, long after /tf_static went out: transient_local still delivers.
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(TFMessage, layout.TF_STATIC_TOPIC, tf_static.append, latched)
        assert spin_until(node, lambda: bool(tf_static), 5.0), "no latched /tf_static"
        code, output = wait_for_exit(replay, 20.0)
    finally:
        stop(replay)
        node.destroy_node()
        rclpy.try_shutdown()
    assert code == 0, output
    assert [stamp for stamp, _, _ in images] == bag.image_stamps_ns
    assert infos == bag.image_stamps_ns
    first = images[0][2]
    assert first.header.frame_id == layout.CAMERA_FRAME
    assert (first.height, first.width, first.encoding) == (125, 414, "bgr8")
    children = {t.child_frame_id for t in tf_static[0].transforms}
    assert children == {layout.IMU_FRAME, layout.VELO_FRAME, layout.CAMERA_FRAME}
    # Receive times follow the recorded spacing divided by the rate (DDS latency is ~ms).
    bag_span_s = (bag.image_stamps_ns[-1] - bag.image_stamps_ns[0]) / 1e9
    wall_span_s = images[-1][1] - images[0][1]
    assert wall_span_s == pytest.approx(bag_span_s / rate, abs=0.08 + 0.1 * bag_span_s / rate)
    assert clocks and min(clocks) >= bag.image_stamps_ns[0] - 10**8
    assert max(clocks) <= bag.image_stamps_ns[-1] + 10**8
    assert max(clocks) - min(clocks) >= 0.5 * bag_span_s * 1e9
    assert f"{layout.IMAGE_TOPIC:48s} {NUM_FRAMES:8d}" in output
    assert "finished: 17 messages" in output  # 8 images, 8 infos, 1 /tf_static
    assert "delivery confirmed by every matched reliable reader" in output
    achieved = re.search(r"achieved rate ([0-9.]+)x", output)
    assert achieved and float(achieved.group(1)) == pytest.approx(rate, rel=0.3)


def test_subscriber_waits_parse_and_reject_bad_counts() -> None:
    assert parse_subscriber_waits(["/a:2", "/b"]) == {"/a": 2, "/b": 1}
    with pytest.raises(BagError, match="'/a:two': N must be an integer"):
        parse_subscriber_waits(["/a:two"])


def test_replay_fails_clearly_on_a_missing_topic(bag) -> None:
    code, output = wait_for_exit(start("-m", "monotakd_ros.nodes.replay", str(bag.bag),
                                       "--topics", "/nope"), 20.0)
    assert code == 1
    assert "no topic(s) ['/nope']" in output


# A reliable image reader that says when it matched the replay, then only spins.
_READER = """
import rclpy, sys
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('stalled_reader')
sub = node.create_subscription(Image, sys.argv[1], lambda m: None,
                               QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
while sub.get_publisher_count() < 1:
    rclpy.spin_once(node, timeout_sec=0.05)
print('matched', flush=True)
while True:
    rclpy.spin_once(node, timeout_sec=0.1)
"""


def test_unacknowledged_delivery_is_reported_before_the_end(bag) -> None:
    """A matched reliable reader that stops answering (SIGSTOP) never acks: the replay says so."""
    reader = start("-c", _READER, layout.IMAGE_TOPIC)
    replay = None
    try:
        replay = start("-m", "monotakd_ros.nodes.replay", str(bag.bag), "--rate", "8",
                       "--topics", layout.IMAGE_TOPIC, "--delay", "2", "--ack-timeout", "1.5",
                       "--wait-for-subscribers", f"{layout.IMAGE_TOPIC}:1")
        assert reader.stdout.readline().strip() == "matched"
        # Both sides matched (a reader stopped earlier may never finish discovery).
        line = "-"
        while line and "subscribers matched" not in line:
            line = replay.stdout.readline()
        assert "subscribers matched; playing in 2.0 s" in line
        reader.send_signal(signal.SIGSTOP)  # still matched, but acknowledges nothing
        code, output = wait_for_exit(replay, 30.0)
    finally:
        reader.send_signal(signal.SIGCONT)
        stop(replay, reader)
    assert code == 0, output
    assert (f"delivery NOT confirmed after 1.5 s on ['{layout.IMAGE_TOPIC}']: a matched "
            "reliable reader did not acknowledge every message") in output
    assert "finished: 8 messages" in output


def test_the_spin_thread_stops_on_its_flag_and_is_joined() -> None:
    """No daemon thread left in rclpy: stop() returns only once the thread has left spin_once."""
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from monotakd_ros.nodes.replay import _SpinThread

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spin_thread_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = _SpinThread(executor)
    try:
        assert not spinner._thread.daemon and spinner._thread.is_alive()
        started = time.monotonic()
        assert spinner.stop(timeout_s=5.0)
        assert not spinner._thread.is_alive() and time.monotonic() - started < 1.0
    finally:
        spinner.stop()
        executor.shutdown(timeout_sec=0.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_an_interrupted_replay_exits_cleanly(bag) -> None:
    """SIGINT mid-playback: status 130, a summary, and no abort from a thread left in rclpy."""
    replay = start("-m", "monotakd_ros.nodes.replay", str(bag.bag), "--rate", "0.05",
                   "--topics", layout.IMAGE_TOPIC)
    try:
        time.sleep(3.0)  # started and publishing (one frame every 2 s)
        replay.send_signal(signal.SIGINT)
        code, output = wait_for_exit(replay, 20.0)
    finally:
        stop(replay)
    assert code == 130, output
    assert "interrupted:" in output
    assert "terminate called" not in output and "Traceback" not in output

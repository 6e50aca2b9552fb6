"""``monotakd_replay``: replay a rosbag2 like ``ros2 bag play``, without the ros2 CLI.

Messages go out as the recorded CDR bytes on their original topics and types, with the QoS the
recorders offered (``/tf_static`` transient_local), at the recorded timing scaled by ``--rate``.
Extras for scripted runs: ``--wait-for-subscribers TOPIC:N`` holds the start until enough
subscribers matched, and ``~/finished`` (std_msgs/Empty, transient_local) announces the end once
every matched reliable reader acknowledged every message (or ``--ack-timeout`` passed, which is
reported). Message types come from the bag, so they are resolved through the allow-list of
``ros/type_hashes.py``, never imported by name.
``~/pause``, ``~/resume`` and ``~/toggle_paused`` (std_msgs/Empty) stand in for the
``rosbag2_player`` services, as std_srvs is not installable from PyPI.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Empty

from monotakd_ros.bags.playback import PlaybackClock, PlaybackSummary, play_messages
from monotakd_ros.bags.recorded_stream import BagSource, QosSpec, ReadAhead, RecordedMessage
from monotakd_ros.errors import BagError, MonotakdError
from monotakd_ros.ros.type_hashes import installed_type_hash, message_class

LOGGER = logging.getLogger("monotakd_replay")
DEFAULT_CLOCK_HZ = 40.0  # ros2 bag play --clock without a value
FINISHED_TOPIC = "~/finished"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options, named as in ``ros2 bag play`` where it has them."""
    parser = argparse.ArgumentParser(prog="monotakd_replay", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("--rate", "-r", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--loop", "-l", action="store_true", help="replay until interrupted")
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics")
    parser.add_argument("--clock", nargs="?", type=float, const=DEFAULT_CLOCK_HZ, default=None,
                        metavar="HZ", help=f"publish /clock at HZ (default {DEFAULT_CLOCK_HZ})")
    parser.add_argument("--start-paused", action="store_true",
                        help="start paused; publish std_msgs/Empty on ~/resume to start")
    parser.add_argument("--delay", "-d", type=float, default=0.0,
                        help="wall seconds to sleep before playing")
    parser.add_argument("--read-ahead", type=int, default=1000, metavar="N",
                        help="messages read ahead of publishing (--read-ahead-queue-size)")
    parser.add_argument("--wait-for-subscribers", nargs="+", default=[], metavar="TOPIC:N",
                        help="before playing, wait until TOPIC has N subscribers")
    parser.add_argument("--wait-for-links", nargs="+", default=[], metavar="TOPIC",
                        help="before playing, also wait until some other node publishes AND "
                             "some node subscribes TOPIC (e.g. a detector's output)")
    parser.add_argument("--wait-timeout", type=float, default=30.0,
                        help="seconds to wait for subscribers before playing anyway")
    parser.add_argument("--ack-timeout", type=float, default=10.0,
                        help="seconds to wait for every matched reliable reader to acknowledge "
                             "every message before announcing the end")
    parser.add_argument("--linger", type=float, default=0.0,
                        help="extra seconds to stay up after the end was announced")
    return parser


def parse_subscriber_waits(specs: Sequence[str]) -> dict[str, int]:
    """``["/topic:2", ...]`` -> ``{"/topic": 2}``; a bare topic means one subscriber."""
    waits: dict[str, int] = {}
    for spec in specs:
        topic, sep, count = spec.rpartition(":")
        if not sep:
            topic, count = spec, "1"
        try:
            waits[topic] = int(count)
        except ValueError as err:
            raise BagError(f"--wait-for-subscribers {spec!r}: N must be an integer") from err
    return waits


def rclpy_qos(spec: QosSpec) -> QoSProfile:
    """The rclpy QoS profile of a replay topic."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=spec.depth,
        reliability=ReliabilityPolicy.RELIABLE if spec.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if spec.transient_local
                    else DurabilityPolicy.VOLATILE))


class ReplayNode(Node):
    """Publishers for the bag's topics plus the pause/resume, /clock and end-signal plumbing."""

    def __init__(self, source: BagSource, clock: PlaybackClock, clock_hz: float | None) -> None:
        super().__init__("monotakd_replay")
        self._playback_clock = clock
        self._replay_publishers: dict[str, Any] = {}
        for topic in source.topics:
            try:
                msg_type = message_class(topic.msgtype)
            except BagError as err:
                self.get_logger().warning(f"{source.bag_path}: {topic.name} not replayed: {err}")
                continue
            installed = installed_type_hash(topic.msgtype)
            if installed and topic.type_hash.startswith("RIHS") and installed != topic.type_hash:
                self.get_logger().warning(
                    f"{topic.name}: bag type hash {topic.type_hash} differs from the installed "
                    f"{topic.msgtype} ({installed}); subscribers may not understand it")
            self._replay_publishers[topic.name] = self.create_publisher(
                msg_type, topic.name, rclpy_qos(topic.qos))
            self.get_logger().info(f"{topic.name} [{topic.msgtype}] {topic.qos.describe()}, "
                                   f"{topic.message_count} messages")
        if not self._replay_publishers:
            raise BagError(f"{source.bag_path}: none of the chosen topics has an installed type")
        self.create_subscription(Empty, "~/pause", lambda _msg: clock.pause(), 10)
        self.create_subscription(Empty, "~/resume", lambda _msg: clock.resume(), 10)
        self.create_subscription(Empty, "~/toggle_paused", lambda _msg: clock.toggle(), 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._finished = self.create_publisher(Empty, FINISHED_TOPIC, latched)
        self._clock_publisher = None
        if clock_hz is not None:
            if not clock_hz > 0.0:
                raise BagError(f"--clock must be > 0 Hz, got {clock_hz}")
            # /clock readers (rclpy/rclcpp time sources) subscribe best effort, keep last 1.
            clock_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
            self._clock_publisher = self.create_publisher(Clock, "/clock", clock_qos)
            self.create_timer(1.0 / clock_hz, self._publish_clock)

    def _publish_clock(self) -> None:
        sec, nanosec = divmod(self._playback_clock.bag_now_ns(), 1_000_000_000)
        message = Clock()
        message.clock.sec, message.clock.nanosec = int(sec), int(nanosec)
        self._clock_publisher.publish(message)

    def publish_recorded(self, message: RecordedMessage) -> None:
        """Forward one recorded message's CDR bytes (topics without a publisher are skipped)."""
        publisher = self._replay_publishers.get(message.topic)
        if publisher is not None:
            publisher.publish(message.data)

    def wait_for_subscribers(self, waits: dict[str, int], timeout_s: float) -> bool:
        """Wait until every topic in ``waits`` has its subscribers; False on timeout."""
        publishers = dict(self._replay_publishers)
        if self._clock_publisher is not None:
            publishers["/clock"] = self._clock_publisher
        unknown = [topic for topic in waits if topic not in publishers]
        if unknown:
            raise BagError(f"--wait-for-subscribers names topic(s) {unknown} that are not "
                           f"published; published: {sorted(publishers)}")
        deadline = time.monotonic() + timeout_s
        while rclpy.ok():
            missing = {topic: (publishers[topic].get_subscription_count(), wanted)
                       for topic, wanted in waits.items()
                       if publishers[topic].get_subscription_count() < wanted}
            if not missing:
                return True
            if time.monotonic() > deadline:
                self.get_logger().warning(
                    f"still waiting for subscribers after {timeout_s:.1f} s (have, want): "
                    f"{missing}; playing anyway")
                return False
            time.sleep(0.05)
        return False

    def wait_for_links(self, topics: Sequence[str], timeout_s: float) -> bool:
        """Wait until each topic has a publisher and a subscriber in the graph; False on timeout.

        Downstream links (detector -> evaluator) matter too: output sent before its reader is
        discovered is lost and would be counted as frames the detector dropped.
        """
        deadline = time.monotonic() + timeout_s
        while rclpy.ok():
            missing = [t for t in topics
                       if self.count_publishers(t) < 1 or self.count_subscribers(t) < 1]
            if not missing:
                return True
            if time.monotonic() > deadline:
                self.get_logger().warning(
                    f"no publisher/subscriber pair on {missing} after {timeout_s:.1f} s; "
                    "playing anyway")
                return False
            time.sleep(0.05)
        return False

    def wait_for_delivery(self, timeout_s: float) -> list[str]:
        """Wait until every matched reliable reader acknowledged everything; unconfirmed topics.

        Best-effort topics count as delivered (DDS does not acknowledge them).
        """
        deadline = time.monotonic() + timeout_s
        return [topic for topic, publisher in sorted(self._replay_publishers.items())
                if not _all_acked(publisher, deadline)]

    def announce_finished(self, timeout_s: float) -> bool:
        """Tell listeners (the evaluator) that the replay has published everything.

        True once the matched readers of the end signal acknowledged it within ``timeout_s``.
        """
        self._finished.publish(Empty())
        return _all_acked(self._finished, time.monotonic() + timeout_s)


def _all_acked(publisher: Any, deadline_s: float) -> bool:
    """Wait in short slices (a shutdown ends the wait) until every reader acknowledged."""
    while rclpy.ok():
        slice_s = min(max(deadline_s - time.monotonic(), 0.0), 0.1)
        if publisher.wait_for_all_acked(Duration(nanoseconds=int(slice_s * 1e9))):
            return True
        if time.monotonic() >= deadline_s:
            return False
    raise ExternalShutdownException()  # interrupted while waiting


class _SpinThread:
    """Spins an executor on a non-daemon thread until ``stop``; joined before destruction.

    rclpy 9.1.2's ``Executor.shutdown`` does not wait for a spinning thread, and a daemon
    thread woken after interpreter shutdown aborts the process; a stop flag checked between
    short ``spin_once`` calls and a checked join avoid both.
    """

    def __init__(self, executor: SingleThreadedExecutor) -> None:
        self._executor = executor
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="replay-spin")
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.1)
            except (KeyboardInterrupt, ExternalShutdownException):
                return

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the thread to leave and wait for it; False when it is still running."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()


def _replay(args: argparse.Namespace) -> PlaybackSummary:
    waits = parse_subscriber_waits(args.wait_for_subscribers)
    if min(args.delay, args.linger, args.ack_timeout) < 0.0:
        raise BagError(f"--delay, --linger and --ack-timeout must be >= 0, got {args.delay}, "
                       f"{args.linger}, {args.ack_timeout}")
    with BagSource(args.bag, args.topics) as source:
        # Bag time stands still (and /clock shows the bag's start) until playing begins.
        clock = PlaybackClock(source.start_ns, args.rate, paused=True)
        node = ReplayNode(source, clock, args.clock)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spinner = _SpinThread(executor)
        reader = None
        try:
            if (node.wait_for_subscribers(waits, args.wait_timeout)
                    and node.wait_for_links(args.wait_for_links, args.wait_timeout) and waits):
                node.get_logger().info(f"subscribers matched; playing in {args.delay:.1f} s")
            time.sleep(args.delay)
            if args.start_paused:
                node.get_logger().info("paused; publish std_msgs/Empty on "
                                       f"{node.resolve_topic_name('~/resume')} to start")
            reader = ReadAhead(source.passes(args.loop), args.read_ahead)
            clock.restart(source.start_ns)
            if not args.start_paused:
                clock.resume()
            summary = play_messages(reader, clock, node.publish_recorded,
                                    should_stop=lambda: not rclpy.ok())
            clock.pause()  # /clock stops at the last message, as with ros2 bag play
            if rclpy.ok() and not summary.interrupted:
                _confirm_and_announce(node, args.ack_timeout)
                time.sleep(args.linger)
            return summary
        finally:
            if reader is not None:
                reader.close()
            # The spinning thread must have left rclpy before the node and context go away.
            if not spinner.stop():
                LOGGER.error("the spin thread did not stop within 5 s; leaving the node alive")
            else:
                executor.shutdown(timeout_sec=0.0)
                node.destroy_node()


def _confirm_and_announce(node: ReplayNode, timeout_s: float) -> None:
    """Announce the end after the readers confirmed delivery; report what was not confirmed."""
    start_s = time.monotonic()
    unconfirmed = node.wait_for_delivery(timeout_s)
    if unconfirmed:
        LOGGER.warning("delivery NOT confirmed after %.1f s on %s: a matched reliable reader "
                       "did not acknowledge every message", timeout_s, unconfirmed)
    else:
        LOGGER.info("delivery confirmed by every matched reliable reader in %.2f s",
                    time.monotonic() - start_s)
    if not node.announce_finished(timeout_s):
        LOGGER.warning("the end signal was not acknowledged within %.1f s", timeout_s)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``monotakd_replay``; returns the exit status (130 when interrupted)."""
    argv = sys.argv if argv is None else ["monotakd_replay", *argv]
    args = build_parser().parse_args(remove_ros_args(argv)[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=argv)
    try:
        summary = _replay(args)
    except MonotakdError as err:
        LOGGER.error("%s", err)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        summary = PlaybackSummary(interrupted=True)
    finally:
        rclpy.try_shutdown()
    sys.stdout.write(summary.format() + "\n")
    sys.stdout.flush()
    return 130 if summary.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

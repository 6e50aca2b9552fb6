"""Bag replay core without ROS: QoS from metadata, message order, timing, loops, read-ahead."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from helpers_replay_eval import write_eval_bag
from rosbags.interfaces import (
    ConnectionExtRosbag2,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from monotakd_ros.bags import kitti_layout as layout
from monotakd_ros.bags.playback import PlaybackClock, play_messages
from monotakd_ros.bags.recorded_stream import BagSource, ReadAhead, RecordedMessage, offered_qos
from monotakd_ros.errors import BagError

MS = 1_000_000


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    return write_eval_bag(tmp_path_factory.mktemp("playback"), num_frames=3)


class FakeConnection:
    def __init__(self, *offers: Qos, count: int = 1) -> None:
        self.ext = ConnectionExtRosbag2("cdr", list(offers))
        self.msgcount = count


def qos(reliability: QosReliability, durability: QosDurability, depth: int = 5) -> Qos:
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, depth, reliability, durability, zero, zero,
               QosLiveliness.AUTOMATIC, zero, False)


def test_offered_qos_follows_the_recorders() -> None:
    best_effort = offered_qos("/cam", [FakeConnection(
        qos(QosReliability.BEST_EFFORT, QosDurability.VOLATILE, depth=7))])
    assert (best_effort.reliable, best_effort.transient_local, best_effort.depth) == (
        False, False, 7)
    latched = offered_qos("/map", [FakeConnection(
        qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, depth=1), count=3)])
    # Every recorded message of a latched topic is kept for late subscribers.
    assert (latched.reliable, latched.transient_local, latched.depth) == (True, True, 3)


def test_mixed_offers_fall_back_to_reliable_volatile() -> None:
    mixed = offered_qos("/x", [
        FakeConnection(qos(QosReliability.BEST_EFFORT, QosDurability.VOLATILE)),
        FakeConnection(qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL)),
    ])
    assert (mixed.reliable, mixed.transient_local) == (True, False)


def test_tf_static_is_always_latched() -> None:
    recorded_volatile = [FakeConnection(qos(QosReliability.RELIABLE, QosDurability.VOLATILE, 1))]
    assert offered_qos("/tf_static", recorded_volatile).transient_local
    assert not offered_qos("/tf", recorded_volatile).transient_local


def test_bag_source_lists_topics_types_and_qos(bag) -> None:
    with BagSource(bag.bag) as source:
        topics = {topic.name: topic for topic in source.topics}
    assert topics[layout.IMAGE_TOPIC].msgtype == "sensor_msgs/msg/Image"
    assert topics[layout.IMAGE_TOPIC].message_count == 3
    assert topics[layout.IMAGE_TOPIC].type_hash.startswith("RIHS01_")
    assert topics[layout.TF_STATIC_TOPIC].qos.transient_local
    assert not topics[layout.IMAGE_TOPIC].qos.transient_local
    assert topics[layout.GROUND_TRUTH_TOPIC].msgtype == "vision_msgs/msg/Detection3DArray"


def test_messages_come_in_time_order_for_the_chosen_topics(bag) -> None:
    chosen = [layout.CAMERA_INFO_TOPIC, layout.IMAGE_TOPIC]
    with BagSource(bag.bag, chosen) as source:
        messages = list(source.messages())
    assert {m.topic for m in messages} == set(chosen)
    stamps = [m.log_time_ns for m in messages]
    assert stamps == sorted(stamps)
    images = [m.log_time_ns for m in messages if m.topic == layout.IMAGE_TOPIC]
    assert images == bag.image_stamps_ns


def test_unknown_topic_and_wrong_paths_are_reported(bag, tmp_path: Path) -> None:
    with pytest.raises(BagError, match=r"no topic\(s\) \['/nope'\]"):
        BagSource(bag.bag, ["/nope"])
    file_path = tmp_path / "x.bag"
    file_path.write_bytes(b"#ROSBAG V2.0")
    with pytest.raises(BagError, match="is a file; a replay needs a rosbag2 folder"):
        BagSource(file_path)
    with pytest.raises(BagError, match="cannot open rosbag2"):
        BagSource(tmp_path / "missing")


def test_loop_passes_repeat_the_bag_with_a_pass_counter(bag) -> None:
    with BagSource(bag.bag, [layout.IMAGE_TOPIC]) as source:
        passes = list(itertools.islice(source.passes(loop=True), 7))
        once = list(source.passes(loop=False))
    assert [m.loop for m in passes] == [0, 0, 0, 1, 1, 1, 2]
    assert [m.log_time_ns for m in passes] == (bag.image_stamps_ns * 3)[:7]
    assert [m.loop for m in once] == [0, 0, 0]


def test_clock_scales_pauses_and_resumes() -> None:
    now = [0]
    clock = PlaybackClock(start_bag_ns=1000 * MS, rate=2.0, now_ns=lambda: now[0])
    now[0] = 100 * MS
    assert clock.bag_now_ns() == 1200 * MS  # 100 ms of wall time is 200 ms of bag time
    assert clock.seconds_until(1300 * MS) == pytest.approx(0.05)
    clock.pause()
    now[0] = 500 * MS
    assert clock.bag_now_ns() == 1200 * MS
    assert clock.seconds_until(1300 * MS) is None
    clock.resume()
    now[0] = 550 * MS
    assert clock.bag_now_ns() == 1300 * MS
    clock.restart(1000 * MS)
    assert clock.bag_now_ns() == 1000 * MS
    with pytest.raises(BagError, match="rate must be > 0, got 0"):
        PlaybackClock(0, rate=0.0)


def stream(*stamps_ms: float, loop: int = 0) -> list[RecordedMessage]:
    return [RecordedMessage("/t", int(s * MS), b"", loop) for s in stamps_ms]


def test_play_messages_keeps_order_and_scaled_timing() -> None:
    sent: list[tuple[int, float]] = []
    clock = PlaybackClock(start_bag_ns=0, rate=2.0)
    start = time.monotonic()
    summary = play_messages(stream(0, 100, 300), clock,
                            lambda m: sent.append((m.log_time_ns, time.monotonic() - start)))
    assert [stamp for stamp, _ in sent] == [0, 100 * MS, 300 * MS]
    # At rate 2 the messages are due 0, 50 and 150 ms after the start: never early.
    for (_, sent_s), due_s in zip(sent, (0.0, 0.05, 0.15), strict=True):
        assert due_s <= sent_s < due_s + 0.1
    assert summary.counts["/t"] == 3 and summary.loops == 1
    assert summary.bag_span_s == pytest.approx(0.3)
    assert summary.achieved_rate == pytest.approx(2.0, rel=0.35)


def test_play_messages_restarts_the_clock_for_each_loop() -> None:
    clock = PlaybackClock(start_bag_ns=0, rate=4.0)
    messages = stream(0, 200) + stream(0, 200, loop=1)
    start = time.monotonic()
    summary = play_messages(messages, clock, lambda m: None)
    wall_s = time.monotonic() - start
    # Two passes of 200 ms bag time at rate 4: 100 ms, with no wait between the passes.
    assert 0.1 <= wall_s < 0.3
    assert summary.loops == 2 and summary.bag_span_s == pytest.approx(0.4)


def test_play_messages_rejects_time_going_backwards_and_stops_on_request() -> None:
    with pytest.raises(BagError, match="not in time order"):
        play_messages(stream(0, 5, 2), PlaybackClock(0, rate=1000.0), lambda m: None)
    sent: list[RecordedMessage] = []
    summary = play_messages(stream(0, 10_000), PlaybackClock(0), sent.append,
                            should_stop=lambda: len(sent) >= 1)
    assert len(sent) == 1 and summary.interrupted


def test_read_ahead_preserves_order_and_forwards_errors() -> None:
    assert list(ReadAhead(iter(range(50)), size=4)) == list(range(50))

    def broken():
        yield 1
        raise BagError("chunk 3 is corrupt")

    reader = ReadAhead(broken(), size=2)
    assert next(reader) == 1
    with pytest.raises(BagError, match="chunk 3 is corrupt"):
        next(reader)
    with pytest.raises(BagError, match="read-ahead size must be >= 1, got 0"):
        ReadAhead(iter([]), size=0)

"""What a replay needs from a rosbag2: topics, their offered QoS, and the messages in time order.

The messages stay serialized (CDR bytes) because a replay only forwards them. QoS follows
``ros2 bag play``: a topic whose recorded publishers all offered the same reliability and
durability is offered that way again, a topic with mixed offers falls back to reliable/volatile.
One deliberate difference: ``/tf_static`` is always offered transient_local, since bags recorded
without it (e.g. converted from ROS 1, where kitti2bag does not latch) would otherwise never
reach a tf2 listener that subscribes after the single message went out.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import ConnectionExtRosbag2, QosDurability, QosReliability
from rosbags.rosbag2 import Reader

from monotakd_ros.bags.failures import bag_failures
from monotakd_ros.errors import BagError

LOGGER = logging.getLogger(__name__)
TF_STATIC_TOPIC = "/tf_static"
DEFAULT_DEPTH = 10  # what ros2 bag play offers when a bag does not record a usable depth
_MAX_LATCHED_DEPTH = 1000  # a transient_local topic keeps every recorded message for late joiners


@dataclass(frozen=True)
class QosSpec:
    """The QoS a replay offers on one topic (a plain description; nodes build rclpy QoS)."""

    reliable: bool = True
    transient_local: bool = False
    depth: int = DEFAULT_DEPTH

    def describe(self) -> str:
        """Short text such as ``reliable/transient_local/keep_last(1)`` for logs."""
        reliability = "reliable" if self.reliable else "best_effort"
        durability = "transient_local" if self.transient_local else "volatile"
        return f"{reliability}/{durability}/keep_last({self.depth})"


@dataclass(frozen=True)
class ReplayTopic:
    """One topic to replay: name, ROS type (``pkg/msg/Type``), type hash, QoS and count."""

    name: str
    msgtype: str
    type_hash: str
    qos: QosSpec
    message_count: int


@dataclass(frozen=True)
class RecordedMessage:
    """One serialized message with its log time; ``loop`` counts completed passes."""

    topic: str
    log_time_ns: int
    data: bytes
    loop: int = 0


def offered_qos(topic: str, connections: Sequence[Any]) -> QosSpec:
    """The QoS to offer on ``topic`` from the recorded offers of its connections."""
    offers = [qos for c in connections if isinstance(c.ext, ConnectionExtRosbag2)
              for qos in c.ext.offered_qos_profiles]
    reliabilities = {qos.reliability for qos in offers}
    durabilities = {qos.durability for qos in offers}
    reliable, transient_local = True, False
    if len(reliabilities) == 1 and len(durabilities) == 1:
        reliable = reliabilities.pop() != QosReliability.BEST_EFFORT
        transient_local = durabilities.pop() == QosDurability.TRANSIENT_LOCAL
    elif offers:
        LOGGER.warning("%s: recorded publishers offered different QoS; replaying it as "
                       "reliable/volatile", topic)
    depth = max([int(qos.depth) for qos in offers if int(qos.depth) > 0], default=DEFAULT_DEPTH)
    depth = min(depth, _MAX_LATCHED_DEPTH)  # a damaged bag must not size a huge history
    count = sum(int(c.msgcount) for c in connections)
    if topic == TF_STATIC_TOPIC:
        transient_local = True
    if transient_local:
        depth = max(depth, min(count, _MAX_LATCHED_DEPTH))
    return QosSpec(reliable=reliable, transient_local=transient_local, depth=max(depth, 1))


class BagSource:
    """An open rosbag2 folder restricted to the chosen topics; close it (or use ``with``)."""

    def __init__(self, bag_path: Path, topics: Sequence[str] | None = None) -> None:
        self.bag_path = Path(bag_path)
        if self.bag_path.is_file():
            raise BagError(
                f"{self.bag_path}: is a file; a replay needs a rosbag2 folder (convert a ROS 1 "
                "bag first: rosbags-convert --src BAG --dst OUT --dst-typestore ros2_kilted)")
        with bag_failures(self.bag_path, "open rosbag2"):
            self._reader = Reader(self.bag_path)
            self._reader.open()
        try:
            with bag_failures(self.bag_path, "read the topics of the rosbag2"):
                self.topics = self._choose_topics(topics)
        except BaseException:
            self._reader.close()
            raise
        wanted = {t.name for t in self.topics}
        self._connections = [c for c in self._reader.connections if c.topic in wanted]

    def _choose_topics(self, requested: Sequence[str] | None) -> list[ReplayTopic]:
        by_topic: dict[str, list[Any]] = {}
        for connection in self._reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        names = list(requested) if requested else sorted(by_topic)
        unknown = [name for name in names if name not in by_topic]
        if unknown:
            raise BagError(f"{self.bag_path}: no topic(s) {unknown}; topics found: "
                           f"{sorted(by_topic)}")
        chosen = []
        for name in dict.fromkeys(names):
            connections = by_topic[name]
            formats = {getattr(c.ext, "serialization_format", "cdr") for c in connections}
            if formats != {"cdr"}:
                raise BagError(f"{self.bag_path}: topic {name} is serialized as {sorted(formats)}"
                               "; only cdr can be replayed")
            msgtypes = {str(c.msgtype) for c in connections}
            if len(msgtypes) != 1:
                raise BagError(f"{self.bag_path}: topic {name} has several types "
                               f"{sorted(msgtypes)}")
            chosen.append(ReplayTopic(
                name=name, msgtype=msgtypes.pop(), type_hash=str(connections[0].digest),
                qos=offered_qos(name, connections),
                message_count=sum(int(c.msgcount) for c in connections),
            ))
        return chosen

    @property
    def start_ns(self) -> int:
        """Log time of the bag's first message (any topic)."""
        with bag_failures(self.bag_path, "read the start time"):
            return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Log time of the bag's last message (any topic)."""
        with bag_failures(self.bag_path, "read the end time"):
            return int(self._reader.end_time)

    def messages(self) -> Iterator[RecordedMessage]:
        """One pass over the chosen topics' messages in log-time order."""
        messages = self._reader.messages(self._connections)
        while True:
            with bag_failures(self.bag_path, "read messages"):
                item = next(messages, None)
            if item is None:
                return
            connection, log_time_ns, data = item
            yield RecordedMessage(connection.topic, int(log_time_ns), bytes(data))

    def passes(self, loop: bool) -> Iterator[RecordedMessage]:
        """The messages once, or again and again with ``loop`` counting completed passes."""
        count = 0
        while True:
            emitted = False
            for message in self.messages():
                emitted = True
                yield RecordedMessage(message.topic, message.log_time_ns, message.data, count)
            count += 1
            if not loop or not emitted:
                return

    def close(self) -> None:
        """Release the bag files."""
        with bag_failures(self.bag_path, "close"):
            self._reader.close()

    def __enter__(self) -> BagSource:
        """Use as a context manager that closes the bag."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the bag."""
        self.close()


class ReadAhead:
    """Iterates ``source`` on a background thread, keeping up to ``size`` items ready.

    Reading and decompressing a chunk can take longer than the gap between two messages; the
    queue absorbs that so publishing stays on time (``ros2 bag play --read-ahead-queue-size``).
    Errors raised by ``source`` are re-raised to the consumer.
    """

    _END = object()

    def __init__(self, source: Iterator[Any], size: int) -> None:
        if size < 1:
            raise BagError(f"read-ahead size must be >= 1, got {size}")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(source,), daemon=True,
                                        name="bag-read-ahead")
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except Exception as err:  # noqa: BLE001 - handed to the consumer thread
            self._put(err)
            return
        self._put(self._END)

    def __iter__(self) -> ReadAhead:
        """The read-ahead is its own iterator."""
        return self

    def __next__(self) -> Any:
        """The next item, waiting for the reader thread if it is behind."""
        item = self._queue.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        """Stop the reader thread (it finishes its current item)."""
        self._stop.set()
        self._thread.join(timeout=2.0)

"""Timing of a bag replay without ROS: rate scaling, pause/resume, loops and the summary.

``PlaybackClock`` maps bag time to monotonic wall time: a message logged ``d`` seconds after the
playback start is due ``d / rate`` seconds after it, minus the time spent paused.
``play_messages`` walks a time-ordered message stream and hands each message to ``publish``
when it is due. The ROS node (``nodes/replay.py``) supplies the publisher and the stop test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from monotakd_ros.bags.recorded_stream import RecordedMessage
from monotakd_ros.errors import BagError

LOGGER = logging.getLogger(__name__)
_NS_PER_S = 1_000_000_000
_STOP_POLL_S = 0.1  # how often a wait looks at the stop test


class PlaybackClock:
    """Bag time <-> monotonic wall time at ``rate``, with pause and resume (thread-safe)."""

    def __init__(self, start_bag_ns: int, rate: float = 1.0, paused: bool = False,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        if not rate > 0.0:
            raise BagError(f"playback rate must be > 0, got {rate}")
        self.rate = float(rate)
        self._now_ns = now_ns
        self._changed = threading.Condition()
        self._anchor_bag_ns = int(start_bag_ns)
        self._anchor_wall_ns = now_ns()
        self._paused = paused

    def bag_now_ns(self) -> int:
        """The bag time playback has reached now."""
        with self._changed:
            return self._bag_now_locked()

    def _bag_now_locked(self) -> int:
        if self._paused:
            return self._anchor_bag_ns
        elapsed_ns = self._now_ns() - self._anchor_wall_ns
        return self._anchor_bag_ns + int(elapsed_ns * self.rate)

    def restart(self, bag_ns: int) -> None:
        """Continue from bag time ``bag_ns`` as of now (a new loop starts)."""
        with self._changed:
            self._anchor_bag_ns, self._anchor_wall_ns = int(bag_ns), self._now_ns()
            self._changed.notify_all()

    def pause(self) -> None:
        """Stop bag time where it is."""
        with self._changed:
            if not self._paused:
                self._anchor_bag_ns = self._bag_now_locked()
                self._paused = True
                self._changed.notify_all()

    def resume(self) -> None:
        """Let bag time run again from where it stood."""
        with self._changed:
            if self._paused:
                self._anchor_wall_ns = self._now_ns()
                self._paused = False
                self._changed.notify_all()

    def toggle(self) -> None:
        """Pause when running, resume when paused."""
        if self._paused:
            self.resume()
        else:
            self.pause()

    def seconds_until(self, bag_ns: int) -> float | None:
        """Wall seconds until ``bag_ns`` is due (<= 0: due now), or None while paused."""
        with self._changed:
            if self._paused:
                return None
            return (int(bag_ns) - self._bag_now_locked()) / self.rate / _NS_PER_S

    def wait_until(self, bag_ns: int, should_stop: Callable[[], bool]) -> bool:
        """Block until ``bag_ns`` is due; False when ``should_stop()`` turned true first."""
        with self._changed:
            while not should_stop():
                if self._paused:
                    self._changed.wait(_STOP_POLL_S)
                    continue
                remaining_s = (int(bag_ns) - self._bag_now_locked()) / self.rate / _NS_PER_S
                if remaining_s <= 0.0:
                    return True
                self._changed.wait(min(remaining_s, _STOP_POLL_S))
        return False


@dataclass
class PlaybackSummary:
    """What a replay published: counts per topic, wall time and the bag time it covered."""

    counts: Counter[str] = field(default_factory=Counter)
    loops: int = 0
    wall_s: float = 0.0  # from the first publish to the end
    bag_span_s: float = 0.0  # bag time from the first to the last published message, all loops
    interrupted: bool = False
    max_lateness_s: float = 0.0  # worst delay of a publish behind its due time

    @property
    def achieved_rate(self) -> float:
        """Bag seconds played per wall second (0 when nothing was played)."""
        return self.bag_span_s / self.wall_s if self.wall_s > 0.0 else 0.0

    def format(self) -> str:
        """A multi-line human summary: one line per topic, then totals."""
        lines = [f"{'topic':48s} messages"]
        lines += [f"{topic:48s} {count:8d}" for topic, count in sorted(self.counts.items())]
        ending = "interrupted" if self.interrupted else "finished"
        lines.append(
            f"{ending}: {sum(self.counts.values())} messages in {self.wall_s:.2f} s wall, "
            f"{self.bag_span_s:.2f} s of bag time, {self.loops} pass(es), achieved rate "
            f"{self.achieved_rate:.2f}x, worst lateness {1e3 * self.max_lateness_s:.1f} ms")
        return "\n".join(lines)


def play_messages(
    messages: Iterable[RecordedMessage],
    clock: PlaybackClock,
    publish: Callable[[RecordedMessage], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> PlaybackSummary:
    """Publish each message when its (rate-scaled) time comes; messages must be time-ordered.

    A new loop (``message.loop`` grows) restarts the clock at that message, so the gap between
    the end of one pass and the start of the next is not waited for.
    """
    summary = PlaybackSummary()
    started_s: float | None = None  # wall time of the first publish: a paused start is no lag
    current_loop: int | None = None
    first_ns = last_ns = 0
    played_ns = 0  # bag time covered by completed passes
    for message in messages:
        if message.loop != current_loop:
            if current_loop is not None:
                played_ns += last_ns - first_ns
            current_loop = message.loop
            first_ns = last_ns = message.log_time_ns
            if message.loop > 0:
                clock.restart(message.log_time_ns)
        if message.log_time_ns < last_ns:
            raise BagError(f"message on {message.topic} at {message.log_time_ns} ns comes after "
                           f"one at {last_ns} ns: the bag is not in time order")
        if not clock.wait_until(message.log_time_ns, should_stop):
            summary.interrupted = True
            break
        lateness_s = -(clock.seconds_until(message.log_time_ns) or 0.0)
        summary.max_lateness_s = max(summary.max_lateness_s, lateness_s)
        if started_s is None:
            started_s = time.monotonic()
        publish(message)
        summary.counts[message.topic] += 1
        last_ns = message.log_time_ns
    if current_loop is not None:
        played_ns += last_ns - first_ns
        summary.loops = current_loop + 1
    summary.bag_span_s = played_ns / _NS_PER_S
    summary.wall_s = time.monotonic() - started_s if started_s is not None else 0.0
    return summary

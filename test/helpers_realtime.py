"""A camera process, the detector process and an observer: the detector at a camera's rate.

Shared by ``bench/bench_node_realtime.py`` and the timing test in
``test/test_detector_realtime.py``. The camera (``ros_procs/realtime_camera.py``) publishes
1242 x 375 frames with sensor-data QoS, as drivers do; the detector runs with its default
parameters except the topics (and what the caller overrides); the observer (this process)
counts what the detector received (its /diagnostics), what it processed (one
``~/debug/pipeline_latency_ms`` per frame) and the CPU time of each process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from helpers_detector import DetectorClient, NodeProcess, spin_until
from rclpy.qos import QoSProfile
from vision_msgs.msg import Detection3DArray

CAMERA = Path(__file__).parent / "ros_procs/realtime_camera.py"
IMAGE_TOPIC, INFO_TOPIC = "/realtime/image_raw", "/realtime/camera_info"
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class RealtimeResult:
    """What happened to the frames of one run."""

    rate_hz: float
    seconds: float
    sent: int = 0
    delivered: int = 0  # images the detector's subscription received (its diagnostics)
    publish_ms: list[float] = field(default_factory=list)  # stamp -> detections published
    receive_ms: list[float] = field(default_factory=list)  # stamp -> detections received
    cpu_share: dict[str, float] = field(default_factory=dict)  # of one core, per process
    load_average: float = 0.0
    timeline: list[dict[str, float]] = field(default_factory=list)  # the node's debug lines

    @property
    def processed(self) -> int:
        """Frames the detector published detections for."""
        return len(self.publish_ms)

    @property
    def processed_share(self) -> float:
        """Processed frames per frame sent."""
        return self.processed / self.sent if self.sent else 0.0

    @property
    def delivered_share(self) -> float:
        """Frames the detector received per frame sent."""
        return self.delivered / self.sent if self.sent else 0.0

    def summary(self) -> str:
        """Several lines for a report."""
        def percentiles(values: list[float]) -> str:
            if not values:
                return "none"
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            return f"median {p50:6.1f} ms  p95 {p95:6.1f}  p99 {p99:6.1f}  max {max(values):6.1f}"

        cpu = "  ".join(f"{name} {100 * share:5.1f} %" for name, share in self.cpu_share.items())
        return (f"{self.rate_hz:g} Hz for {self.seconds:g} s: sent {self.sent}, delivered "
                f"{self.delivered} ({100 * self.delivered_share:.1f} %), processed "
                f"{self.processed} ({100 * self.processed_share:.1f} %)\n"
                f"  stamp -> publish : {percentiles(self.publish_ms)}\n"
                f"  stamp -> receive : {percentiles(self.receive_ms)}\n"
                f"  CPU (% of one core): {cpu}  | load average {self.load_average:.1f}")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class _Camera:
    """The camera process; notes when it reports the end of its run."""

    def __init__(self, rate_hz: float, seconds: float, encoding: str, reliable: bool) -> None:
        args = [sys.executable, str(CAMERA), IMAGE_TOPIC, INFO_TOPIC, str(rate_hz), str(seconds),
                encoding] + (["reliable"] if reliable else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def sent_line(self) -> list[str] | None:
        """The fields of the SENT line once printed."""
        for line in self.output:
            if line.startswith("SENT"):
                return line.split()
        return None

    def stop(self) -> None:
        """Wait for the camera to exit (kill it if it hangs)."""
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)


def run_realtime(log_dir: Path, rate_hz: float, seconds: float, encoding: str = "rgb8",
                 params: dict[str, Any] | None = None, reliable_camera: bool = False,
                 timeline: bool = False) -> RealtimeResult:
    """Camera at ``rate_hz`` for ``seconds`` into a detector process with ``params``.

    ``timeline``: run the node at debug log level and collect its per-frame timeline lines.
    """
    node_params = {"image_topic": IMAGE_TOPIC, "camera_info_topic": INFO_TOPIC,
                   **(params or {})}
    result = RealtimeResult(rate_hz=rate_hz, seconds=seconds)
    ros_args = ("--log-level", "monotakd_detector:=debug") if timeline else ()
    node = NodeProcess(log_dir / f"node_{rate_hz:g}hz.log", node_params,
                       threads_from_params=True, ros_args=ros_args)
    client = DetectorClient(IMAGE_TOPIC, INFO_TOPIC)
    arrivals: list[tuple[Any, int]] = []
    client.node.create_subscription(
        Detection3DArray, client.topics["detections"],
        lambda msg: arrivals.append((msg, time.time_ns())), QoSProfile(depth=500))
    camera: _Camera | None = None
    try:
        if not client.wait_for_detector(timeout_s=90.0):
            raise RuntimeError(f"detector never came up:\n{node.log()}")
        client.spin(1.0)
        for received in client.received.values():
            received.clear()
        camera = _Camera(rate_hz, seconds, encoding, reliable_camera)
        # The camera publishes from about 1 s after it matched; take CPU over the whole run.
        cpu_start = {"detector": process_cpu_s(node.proc.pid),
                     "camera": process_cpu_s(camera.proc.pid), "observer": time.process_time()}
        wall_start = time.monotonic()
        spin_until(client.executor, lambda: camera.sent_line() is not None, seconds + 90.0)
        wall_s = time.monotonic() - wall_start
        cpu_end = {"detector": process_cpu_s(node.proc.pid),
                   "camera": process_cpu_s(camera.proc.pid), "observer": time.process_time()}
        client.spin(2.5)  # the last frame and the last diagnostics window
        fields = camera.sent_line()
        if fields is None or int(fields[1]) == 0:
            raise RuntimeError(f"camera failed: {camera.output}\n{node.log()}")
        result.sent = int(fields[1])
        first_ns, last_ns = int(fields[2]), int(fields[3])
        result.cpu_share = {name: (cpu_end[name] - cpu_start[name]) / wall_s
                            for name in cpu_start}
        result.load_average = os.getloadavg()[0]
        result.publish_ms = [m.data for m in client.received["latency_ms"]]
        result.receive_ms = _receive_latencies_ms(arrivals, first_ns, last_ns)
        result.delivered = _images_delivered(client.received["diagnostics"])
    finally:
        if camera is not None:
            camera.stop()
        client.close()
        node.stop()
    if timeline:
        result.timeline = timeline_steps(node.log())
    return result


def timeline_steps(log: str) -> list[dict[str, float]]:
    """The detector's debug 'timeline' lines as {step: milliseconds} per frame."""
    frames = []
    for line in log.splitlines():
        if "timeline " not in line:
            continue
        steps = line.split(": ", 2)[-1].replace(" -> ", ", ").replace(" ms", "")
        frames.append({name: float(value) for name, value in
                       (item.strip().rsplit(" ", 1) for item in steps.split(","))})
    return frames


def _receive_latencies_ms(arrivals: list[tuple[Any, int]], first_ns: int,
                         last_ns: int) -> list[float]:
    """Stamp -> arrival at the observer of each Detection3DArray of this run."""
    stamps = []
    for msg, arrival_ns in arrivals:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if first_ns <= stamp_ns <= last_ns:
            stamps.append((arrival_ns - stamp_ns) / 1e6)
    return stamps


def _images_delivered(diagnostics: list[Any]) -> int:
    """Images the detector counted over every diagnostics window received."""
    total = 0
    for array in diagnostics:
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            total += int(values.get("images", 0))
    return total

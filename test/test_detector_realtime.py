"""The detector keeps up with a 10 Hz camera, and the camera's frames arrive (issues 19, 15).

The one long test of the suite (about 75 s): 60 s of 1242 x 375 rgb8 frames at 10 Hz from a
camera process with sensor-data QoS into the detector process with its default parameters
(shipped student, default transport profile from scripts/env.sh). Its thresholds assume an idle
2-core machine, hence the timing marker.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from monotakd_ros.nodes.detector_params import torch_threads

sys.path.insert(0, str(Path(__file__).parent))
from helpers_realtime import run_realtime, timeline_steps  # noqa: E402


@pytest.mark.timing
@pytest.mark.slow
def test_ten_hz_camera_frames_arrive_and_are_processed(tmp_path: Path) -> None:
    result = run_realtime(tmp_path, rate_hz=10.0, seconds=30.0, encoding="rgb8")
    report = result.summary()
    assert result.sent >= 295, report
    assert result.delivered_share >= 0.99, report  # issue 15: frames reach the subscription
    assert result.processed_share >= 0.80, report  # issue 19: the node keeps up


def test_timeline_lines_parse_into_steps() -> None:
    log = ("[DEBUG] [1796.1] [monotakd_detector]: timeline 12.000000001: stamp->callback 17.2 "
           "ms, waited 3.0, convert 0.1, prepare 2.0, network 46.0, decode 0.4, other 1.0 -> "
           "stamp->publish 69.7 ms\n[INFO] [1796.2] [monotakd_detector]: something else")
    (frame,) = timeline_steps(log)
    assert frame == {"stamp->callback": 17.2, "waited": 3.0, "convert": 0.1, "prepare": 2.0,
                     "network": 46.0, "decode": 0.4, "other": 1.0, "stamp->publish": 69.7}


def test_cpu_threads_auto_uses_every_usable_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert torch_threads(0) == len(os.sched_getaffinity(0))
    assert torch_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice wins over auto
    assert torch_threads(0) == 1
    assert torch_threads(2) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert torch_threads(0) == len(os.sched_getaffinity(0))

"""The detector at a camera's rate: camera and detector in separate processes (issue 19).

Usage:
    scripts/env.sh python bench/bench_node_realtime.py                 # 10 and 15 Hz, 30 s each
    scripts/env.sh python bench/bench_node_realtime.py --rates 10 --seconds 10 \\
        --variant one_thread=cpu_threads:=1 --variant two=cpu_threads:=2,executor:=events

A camera process publishes 1242 x 375 rgb8 Images with their CameraInfo (sensor-data QoS,
stamped at send time) to the detector process, which runs the shipped student
(models/default_student) with its default parameters plus each variant's overrides. Per run it
prints frames sent / delivered to the detector's subscription / processed, stamp -> publish
(the node's ``~/debug/pipeline_latency_ms``) and stamp -> receive percentiles, and the CPU share
of each process. Variants run one after another in one invocation, so their ratios compare
under the same machine load; the load average is printed with each run.

Targets (idle 2-core machine, 10 Hz): >= 95 % processed, stamp -> publish median <= 80 ms,
p95 <= 120 ms; >= 99 % delivered.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))  # the process helpers shared with the timing test

from helpers_realtime import run_realtime  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """'label=name:=value,name:=value' -> (label, {name: value})."""
    label, _, assignments = text.partition("=")
    overrides = {}
    for item in filter(None, assignments.split(",")):
        name, sep, value = item.partition(":=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: expected name:=value, got {item!r}")
        overrides[name.strip()] = value.strip()
    return label, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 15.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--encoding", default="rgb8", choices=["rgb8", "bgr8"])
    parser.add_argument("--variant", action="append", default=[],
                        help="label=param:=value,... (repeatable); default: the node's defaults")
    parser.add_argument("--reliable-camera", action="store_true",
                        help="camera publishes with reliable QoS (default: sensor data)")
    parser.add_argument("--timeline", action="store_true",
                        help="node at debug log level: median per-frame timeline of each run")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant] or [("defaults", {})]
    load = os.getloadavg()
    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"cpus={os.cpu_count()} | torch {torch.__version__} | load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f} | FASTDDS_DEFAULT_PROFILES_FILE="
          f"{os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', '<unset>')}")
    print(f"frames: 1242x375 {args.encoding} + CameraInfo, camera QoS "
          f"{'reliable' if args.reliable_camera else 'sensor data (best effort)'}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, overrides in variants:
            for rate_hz in args.rates:
                result = run_realtime(Path(tmp), rate_hz, args.seconds, args.encoding, overrides,
                                      args.reliable_camera, args.timeline)
                print(f"\n[{label}] {overrides or 'node defaults'}\n{result.summary()}",
                      flush=True)
                if result.timeline:
                    print_timeline(result.timeline)

def print_timeline(timeline: list[dict[str, float]]) -> None:
    """Median and p95 of every step of the per-frame timelines."""
    for label, statistic in (("median", np.median), ("p95", lambda v: np.percentile(v, 95))):
        print(f"  timeline of {len(timeline)} frames ({label} ms): "
              + ", ".join(f"{step} {statistic([f[step] for f in timeline]):.1f}"
                          for step in timeline[0]), flush=True)


if __name__ == "__main__":
    main()

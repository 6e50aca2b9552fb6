"""README main job: a synthetic drive replayed through the detector over DDS, then scored.

1. Generate a short synthetic KITTI raw drive and convert it to a ROS 2 bag (kitti2bag layout),
   unless the bag already exists in the output folder.
2. ``monotakd-replay-eval``: replay the bag, run ``monotakd_detector`` on the shipped default
   student in its own process, and run ``monotakd_evaluator`` against the bag's ground truth.
3. Print the KITTI AP table; the report (JSON, markdown, PR curves, BEV plot, overlay images)
   stays in the output folder.

The numbers are synthetic-data numbers of a small CPU model, not KITTI results.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.writer import write_raw_drives
from monotakd_ros.eval.stream_report import JSON_NAME
from monotakd_ros.nodes import replay_eval
from monotakd_ros.resources import default_model_path

LOG = logging.getLogger("monotakd_ros.demo")
ROOT = Path(__file__).resolve().parents[1]
# Street scenes with about four cyclists per world instead of one, which leaves most 60-frame
# drives without any: the demo drive shows (and scores) all three classes.
DEMO_SCENES = SynthConfig(cyclists_mean=4.0)
DEMO_SCENES_VERSION = 2  # part of the cached bag's name: a changed scene makes a new bag


def demo_bag(out: Path, frames: int, seed: int) -> Path:
    """Bag of a synthetic drive under ``out``, generated once and reused afterwards."""
    bag = out / f"synthetic_drive_v{DEMO_SCENES_VERSION}_seed{seed}_{frames}f"
    if (bag / "metadata.yaml").is_file():
        LOG.info("reusing %s", bag)
        return bag
    raw = out / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    LOG.info("generating a %d-frame synthetic drive (seed %d)", frames, seed)
    (drive,) = write_raw_drives(raw, num_drives=1, frames_per_drive=frames, seed=seed,
                                config=DEMO_SCENES, overwrite=True)
    LOG.info("converting %s to %s", drive, bag)
    convert_drive_to_bag(drive, bag)
    shutil.rmtree(raw, ignore_errors=True)
    return bag


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the demo."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "demo_output",
                        help="output folder (bag, report, overlays)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the synthetic drive")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the synthetic drive")
    parser.add_argument("--rate", type=float, default=0.5,
                        help="replay speed (the detector keeps only the newest frame, so a "
                             "rate above its throughput drops frames, which are reported)")
    parser.add_argument("--model", type=Path, default=None,
                        help="student checkpoint (default: the shipped models/default_student)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the replay-evaluation's exit status (130 when interrupted)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    report = args.out / "report"
    try:
        status = _run(args, report)
    except KeyboardInterrupt:
        status = 130
    if (report / JSON_NAME).is_file():  # written by this run: the folder was emptied first
        LOG.info("demo finished in %.0f s with status %d; report in %s (report.md, "
                 "pr_curves.png, bev.png, overlays/)", time.monotonic() - start, status, report)
    else:
        LOG.error("demo stopped after %.0f s with status %d; no report was written",
                  time.monotonic() - start, status)
    return status


def _run(args: argparse.Namespace, report: Path) -> int:
    """Bag, then replay-evaluation into ``report`` (emptied first, so it holds this run only)."""
    args.out.mkdir(parents=True, exist_ok=True)
    # A report left by an earlier run must never pass for this run's, even when it stops early.
    shutil.rmtree(report, ignore_errors=True)
    model = args.model if args.model is not None else default_model_path()
    bag = demo_bag(args.out, args.frames, args.seed)
    return replay_eval.main([
        str(bag), "--report-dir", str(report), "--rate", str(args.rate), "--overlays", "4",
        "--detector-param", f"model_path:={model}", f"device:={args.device}",
        # Fast DDS drops many full-size best-effort images on loopback: replay reliably.
        "qos_reliability:=reliable",
    ])


if __name__ == "__main__":
    sys.exit(main())

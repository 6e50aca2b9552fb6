"""Decode (thresholds, top-k, box decoding, rotated NMS) before and after issue 19, in one run.

Usage:
    scripts/env.sh python bench/bench_decode.py [--frames 4] [--repeats 20] [--threads 1]

"before" is the per-class decode over the full IoU matrix (kept as the reference in
test/helpers_postprocess.py); "after" is ``models.postprocess.detections_from_head``. Both run
interleaved on the same head outputs:

- the shipped student (models/default_student) on synthetic KITTI frames, at the node's score
  threshold (0.3) and at the checkpoint's (0.1, where its 300-candidate cap is reached);
- a randomly initialised small student at score 0.005 (every anchor passes; 300 candidates per
  class), as ``bench_node_overhead.py`` times it, and the issue's 13.1 ms came from.

Prints the machine, then per case: detections, median and p90 of each, and after/before.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))  # the reference decode

from helpers_postprocess import reference_frame_detections  # noqa: E402

from monotakd_ros.data.batch import prepare_image  # noqa: E402
from monotakd_ros.data.synth.generator import generate_object_frame  # noqa: E402
from monotakd_ros.inference import StudentPredictor  # noqa: E402
from monotakd_ros.models.config import load_model_config  # noqa: E402
from monotakd_ros.models.outputs import HeadOutput  # noqa: E402
from monotakd_ros.models.postprocess import detections_from_head  # noqa: E402
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint  # noqa: E402


def head_outputs(predictor: StudentPredictor, frames: list) -> list[HeadOutput]:
    """The network's head outputs on each (image, P2) frame."""
    model = predictor._loaded_model()
    heads = []
    for image_bgr, P2 in frames:
        image, P_input, _ = prepare_image(image_bgr, P2, predictor.spec)
        with torch.inference_mode():
            heads.append(model(image[None], torch.as_tensor(P_input, dtype=torch.float32)[None])
                         .head)
    return heads


def compare(label: str, predictor: StudentPredictor, heads: list[HeadOutput],
            score_threshold: float, max_detections: int, repeats: int) -> None:
    """Time both decodes interleaved on every head; print one line."""
    cfg = dataclasses.replace(predictor.postprocess, score_threshold=score_threshold,
                              max_detections=max_detections)
    anchors, head_cfg = predictor._loaded_model().head.anchors, predictor.model_cfg.head
    before, after, found = [], [], 0
    with torch.inference_mode():
        for head in heads:
            found += len(detections_from_head(head, anchors, head_cfg, cfg)[0])
            for _ in range(repeats):
                start = time.perf_counter()
                reference_frame_detections(head, anchors, head_cfg, cfg)
                middle = time.perf_counter()
                detections_from_head(head, anchors, head_cfg, cfg)
                after.append((time.perf_counter() - middle) * 1e3)
                before.append((middle - start) * 1e3)
    b50, b90 = np.percentile(before, [50, 90])
    a50, a90 = np.percentile(after, [50, 90])
    print(f"{label:<34} {found / len(heads):5.1f} det/frame | before median {b50:7.2f} ms "
          f"p90 {b90:7.2f} | after median {a50:6.2f} ms p90 {a90:6.2f} | after/before "
          f"{a50 / b50:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"cpus={os.cpu_count()} | torch {torch.__version__} threads={torch.get_num_threads()}"
          f" | load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    frames = [(f.image_bgr, f.calib.P2) for f in
              (generate_object_frame(7, index) for index in range(args.frames))]
    shipped = StudentPredictor.from_checkpoint(ROOT / "models/default_student", device="cpu")
    heads = head_outputs(shipped, frames)
    compare("shipped student, score 0.3 (node)", shipped, heads, 0.3, 100, args.repeats)
    compare("shipped student, score 0.1 (ckpt)", shipped, heads, 0.1, 100, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_random_student_checkpoint(
            Path(tmp) / "random", load_model_config(ROOT / "config/models/small.yaml"))
        random_student = StudentPredictor.from_checkpoint(checkpoint, device="cpu")
        compare("random student, score 0.005, max 20", random_student,
                head_outputs(random_student, frames), 0.005, 20, max(1, args.repeats // 4))


if __name__ == "__main__":
    main()

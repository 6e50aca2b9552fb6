"""Score a student on one synthetic scene set seen through four cameras (docs/cameras.md).

Usage:
    .venv/bin/python scripts/evaluate_cameras.py --frames 200 --seed 1000
    .venv/bin/python scripts/evaluate_cameras.py --camera-mode fit_width   # the old input step

Each frame goes through the detector node's input path: the rendered image becomes a
sensor_msgs/Image (bgr8) and its P a CameraInfo, which are converted back with the node's own
functions and passed to the same ``StudentPredictor`` the node runs. The scenes (seed 1000 by
default) were never part of the shipped student's training set (seed 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sensor_msgs.msg import CameraInfo, Image

from monotakd_ros.eval.camera_set import CAMERA_SETS, markdown_table, score_cameras
from monotakd_ros.inference.predictor import CAMERA_MODES, StudentPredictor
from monotakd_ros.ros.camera_input import projection_from_camera_info
from monotakd_ros.ros.image_conversion import array_to_image_msg, image_msg_to_bgr8

ROOT = Path(__file__).resolve().parents[1]


def node_input_path(predictor: StudentPredictor):  # noqa: ANN201 -- a Detector callable
    """image, P -> detections, through Image/CameraInfo messages as the node receives them."""

    def detect(image_bgr: np.ndarray, P: np.ndarray):  # noqa: ANN202
        msg = array_to_image_msg(image_bgr, "bgr8", Image())
        info = CameraInfo(height=image_bgr.shape[0], width=image_bgr.shape[1])
        info.p = [float(v) for v in np.asarray(P).ravel()]
        received = image_msg_to_bgr8(msg)
        found = predictor.predict(received, projection_from_camera_info(info, received.shape[:2]))
        return found.boxes_cam, found.scores, found.class_names

    return detect


def main() -> None:
    """Parse the arguments, score every camera and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/default_student")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--camera-mode", choices=CAMERA_MODES, default="virtual")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cameras", choices=sorted(CAMERA_SETS), default="four",
                        help="four: KITTI, 640x480, 1280x720, 1920x1080; near_kitti: KITTI's "
                             "image with fx 620 / 721.5 / 830")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = StudentPredictor.from_checkpoint(args.model, device="cpu",
                                                 camera_mode=args.camera_mode)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s); model {args.model}; "
          f"camera_mode {args.camera_mode}; cameras {args.cameras}; seed {args.seed}, "
          f"{args.frames} frames")
    start = time.perf_counter()
    scores = score_cameras(args.seed, range(args.frames), CAMERA_SETS[args.cameras],
                           node_input_path(predictor))
    print(markdown_table(scores))
    kitti, second = scores[0], scores[1]
    print(f"AP3D Moderate {second.name} / KITTI: {second.car_ap3d_r40[1]:.2f} / "
          f"{kitti.car_ap3d_r40[1]:.2f} = "
          f"{second.car_ap3d_r40[1] / max(kitti.car_ap3d_r40[1], 1e-9):.2f}")
    for s in scores:
        print(f"{s.name}: median |rel depth error| {100 * s.median_abs_rel_depth_error:.1f} % "
              f"(KITTI {100 * kitti.median_abs_rel_depth_error:.1f} %, difference "
              f"{100 * (s.median_abs_rel_depth_error - kitti.median_abs_rel_depth_error):+.1f} "
              "points)")
    print(f"took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

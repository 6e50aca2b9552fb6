"""docs/detections.png: the shipped student's boxes on held-out synthetic frames (no labels drawn).

Usage: scripts/env.sh python scripts/make_detection_figure.py [--data DIR] [--split S] [--frames N]
Frames come from a synthetic KITTI object set (``monotakd-synth object --labelled-test``); the
figure stacks the ``N`` frames with the most detections among the first 40 of the split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset
from monotakd_ros.inference.drawing import draw_boxes_cam
from monotakd_ros.inference.predictor import StudentPredictor
from monotakd_ros.resources import default_model_path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Render the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synth_object")
    parser.add_argument("--split", default="test", help="ImageSets name (default test)")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "detections.png")
    args = parser.parse_args()
    dataset = KittiObjectDataset(args.data)
    # The detector node's defaults (config/detector.yaml).
    predictor = StudentPredictor.from_checkpoint(default_model_path(), device="cpu",
                                                 score_threshold=0.3, nms_iou=0.1)
    drawn = []
    for fid in dataset.frame_ids(args.split)[:40]:
        image, P2 = dataset.image(fid), dataset.calib(fid).P2
        detections = predictor.predict(image, P2)
        canvas = draw_boxes_cam(image, detections.boxes_cam, P2, detections.class_names,
                                detections.scores)
        drawn.append((len(detections.scores), canvas))
    drawn.sort(key=lambda item: -item[0])
    cv2.imwrite(str(args.out), np.vstack([canvas for _, canvas in drawn[: args.frames]]))


if __name__ == "__main__":
    main()

"""Draw docs/virtual_camera.png: what the network sees of a 640x480, fx 500 camera.

Usage: .venv/bin/python scripts/make_camera_figure.py [--out docs/virtual_camera.png]

Top: the user's image (a synthetic scene rendered through that camera) with the window each
input step keeps. Bottom: the network inputs of the old fit-to-width step and of the virtual
camera, with the shipped student's detections projected through the carried P.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from monotakd_ros.data.batch import prepare_image, resized_hw
from monotakd_ros.eval.camera_set import TEST_CAMERAS, render_through_cameras
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d
from monotakd_ros.inference.predictor import StudentPredictor

ROOT = Path(__file__).resolve().parents[1]
NODE_SCORE_THRESHOLD = 0.3  # the detector node's default
GREEN, RED, WHITE = (90, 230, 90), (90, 90, 255), (255, 255, 255)


def input_to_bgr(tensor: torch.Tensor, predictor: StudentPredictor) -> np.ndarray:
    """(3, H, W) normalised RGB network input -> uint8 BGR picture."""
    mean = np.array(predictor.spec.mean)[:, None, None]
    std = np.array(predictor.spec.std)[:, None, None]
    rgb = (tensor.numpy() * std + mean).transpose(1, 2, 0)
    return np.clip(rgb[:, :, ::-1] * 255.0, 0, 255).astype(np.uint8).copy()


def label(image: np.ndarray, text: str, colour: tuple[int, int, int] = WHITE) -> None:
    cv2.rectangle(image, (0, 0), (image.shape[1] - 1, 26), (30, 30, 30), -1)
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


def draw_detections(image: np.ndarray, boxes_cam: np.ndarray, P: np.ndarray) -> None:
    if len(boxes_cam) == 0:
        return
    for x1, y1, x2, y2 in boxes3d_to_boxes2d(boxes_cam, P, image.shape[:2], clip=True):
        cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), (0, 220, 255), 2)


def main() -> None:
    """Render the scene, run both input steps and save the figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/virtual_camera.png")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--frame", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = render_through_cameras(args.seed, args.frame, TEST_CAMERAS[1:2])[0]
    image, P = frame.image_bgr, frame.calib.P2
    predictor = StudentPredictor.from_checkpoint(ROOT / "models/default_student", device="cpu",
                                                 score_threshold=NODE_SCORE_THRESHOLD)
    mapping = predictor.camera_mapping(P, image.shape[:2])
    old_input, old_P, _ = prepare_image(image, P, predictor.spec)
    new_input, new_P = predictor.prepared_input(image, P)

    top = image.copy()
    u0, v0, u1, v1 = mapping.crop_window_px
    cv2.rectangle(top, (int(u0), int(v0)), (int(u1) - 1, int(v1) - 1), GREEN, 2)
    old_rows = predictor.spec.input_hw[0] * image.shape[0] / resized_hw(image.shape[:2],
                                                                          predictor.spec)[0]
    cv2.rectangle(top, (1, 1), (image.shape[1] - 2, int(old_rows)), RED, 2)
    label(top, "640x480 camera, fx 500. Kept by the old input step: red; by the virtual camera: "
               "green")

    fit_width = StudentPredictor.from_checkpoint(ROOT / "models/default_student", device="cpu",
                                                 camera_mode="fit_width",
                                                 score_threshold=NODE_SCORE_THRESHOLD)
    old_found = fit_width.predict(image, P)
    old = input_to_bgr(old_input, predictor)
    draw_detections(old, old_found.boxes_cam, old_P)
    label(old, f"old: fit width, keep the top 192 rows: {len(old_found)} detections", RED)
    new = input_to_bgr(new_input, predictor)
    new_found = predictor.predict(image, P)
    draw_detections(new, new_found.boxes_cam, new_P)
    label(new, f"virtual camera: x{mapping.scale_xy[0]:.3f} (fx 500 -> {new_P[0, 0]:.1f}), "
               f"{100 * mapping.seen_fraction:.0f} % seen: {len(new_found)} detections", GREEN)
    gap = np.full((8, top.shape[1], 3), 255, np.uint8)
    cv2.imwrite(str(args.out), np.vstack([top, gap, old, gap, new]))
    print(f"wrote {args.out}: {mapping.summary()}")


if __name__ == "__main__":
    main()

"""Regenerate docs/gallery.png and docs/gallery_bev.png from synthetic object frames.

gallery.png shows the frames with their projected 3-D boxes; gallery_bev.png their LiDAR sweeps
from above with the labelled boxes. Usage:
.venv/bin/python scripts/make_gallery.py [--seed 0] [--frames 4] [--out docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from monotakd_ros.data.synth.generator import SynthFrame, generate_object_frame  # noqa: E402
from monotakd_ros.geometry.boxes import BOX_EDGES, corners_cam, corners_lidar  # noqa: E402
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar  # noqa: E402

CLASS_BGR = {"Car": (60, 220, 60), "Van": (230, 200, 40), "Pedestrian": (40, 60, 240),
             "Cyclist": (220, 60, 220)}


def annotate(frame: SynthFrame) -> np.ndarray:
    """The frame's image with projected 3-D boxes (and grey DontCare rectangles)."""
    image = frame.image_bgr.copy()
    labels = frame.labels
    for k in range(len(labels)):
        name = str(labels.names[k])
        if name == "DontCare":
            x0, y0, x1, y1 = labels.bbox[k].astype(int)
            cv2.rectangle(image, (x0, y0), (x1, y1), (150, 150, 150), 1)
            continue
        corners = corners_cam(labels.boxes_cam[k:k + 1])[0]
        if (corners[:, 2] < 0.5).any():
            continue
        uv, _ = frame.calib.rect_to_image(corners)
        pts = np.round(uv).astype(int)
        for a, b in BOX_EDGES:
            cv2.line(image, tuple(pts[a]), tuple(pts[b]), CLASS_BGR[name], 1, cv2.LINE_AA)
        cv2.putText(image, f"{name[0]} occ{labels.occluded[k]}", tuple(pts[4] + [0, -3]),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, CLASS_BGR[name], 1, cv2.LINE_AA)
    return image


def bev_axes(ax: plt.Axes, frame: SynthFrame) -> None:
    """LiDAR points from above (coloured by height) with the labelled boxes."""
    points = frame.points
    keep = (points[:, 0] > -10) & (points[:, 0] < 60) & (np.abs(points[:, 1]) < 30)
    ax.set_facecolor("black")
    ax.scatter(points[keep, 1], points[keep, 0], s=0.4, c=points[keep, 2], cmap="turbo",
               vmin=-2.0, vmax=1.0, linewidths=0)
    objects = frame.labels.names != "DontCare"
    boxes = boxes_cam_to_lidar(frame.labels.boxes_cam[objects], frame.calib)
    for name, corners in zip(frame.labels.names[objects], corners_lidar(boxes), strict=True):
        ring = corners[[0, 1, 2, 3, 0]]
        color = np.array(CLASS_BGR[str(name)][::-1]) / 255.0
        ax.plot(ring[:, 1], ring[:, 0], color=color, linewidth=1.0)
        ax.plot(corners[[0, 1], 1], corners[[0, 1], 0], color="white", linewidth=1.5)  # front
    ax.set_xlim(30, -30)
    ax.set_ylim(-10, 60)
    ax.set_aspect("equal")
    ax.set_xlabel("y (m, left)")
    ax.set_ylabel("x (m, forward)")


def main() -> None:
    """Write both gallery images."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = parser.parse_args()
    frames = [generate_object_frame(args.seed, i) for i in range(args.frames)]
    args.out.mkdir(parents=True, exist_ok=True)
    strip = np.concatenate([annotate(f) for f in frames])
    # Three quarters of full size keeps the boxes legible and the file small.
    strip = cv2.resize(strip, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(args.out / "gallery.png"), strip, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    fig, axes = plt.subplots(1, args.frames, figsize=(4.2 * args.frames, 5.2))
    for i, (ax, frame) in enumerate(zip(np.atleast_1d(axes), frames, strict=True)):
        bev_axes(ax, frame)
        ax.set_title(f"frame {i}: {len(frame.points)} points")
    fig.tight_layout()
    fig.savefig(args.out / "gallery_bev.png", dpi=110)


if __name__ == "__main__":
    main()

"""Hand-made KITTI scenes for the evaluator tests, placed so that every IoU is easy to derive."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels

CAR_DIMS = (4.0, 1.5, 1.6)  # l, h, w in metres
PED_DIMS = (0.8, 1.7, 0.6)


@dataclass(frozen=True)
class Obj:
    """One object of a hand-made frame (camera box [x, y, z, l, h, w, ry], image box)."""

    name: str = "Car"
    box: tuple[float, ...] = (0.0, 1.6, 20.0, *CAR_DIMS, 0.0)
    bbox: tuple[float, float, float, float] = (500.0, 150.0, 600.0, 200.0)  # 50 px high
    truncated: float = 0.0
    occluded: int = 0
    alpha: float = 0.0
    score: float | None = None


def frame(objects: list[Obj]) -> KittiLabels:
    """KittiLabels of ``objects``; detections when they carry scores."""
    scores = [o.score for o in objects]
    has_score = bool(objects) and scores[0] is not None
    return KittiLabels(
        names=np.array([o.name for o in objects], dtype="<U16"),
        truncated=np.array([o.truncated for o in objects], dtype=np.float64),
        occluded=np.array([o.occluded for o in objects], dtype=np.int64),
        alpha=np.array([o.alpha for o in objects], dtype=np.float64),
        bbox=np.array([o.bbox for o in objects], dtype=np.float64).reshape(-1, 4),
        boxes_cam=np.array([o.box for o in objects], dtype=np.float64).reshape(-1, 7),
        score=np.array(scores, dtype=np.float64) if has_score else None,
    )


def empty() -> KittiLabels:
    """A frame without objects."""
    return frame([])


def shifted(obj: Obj, dx_m: float = 0.0, dz_m: float = 0.0, **changes: object) -> Obj:
    """``obj`` moved by (dx, dz) on the ground, with other fields replaced as given."""
    box = list(obj.box)
    box[0] += dx_m
    box[2] += dz_m
    return replace(obj, box=tuple(box), **changes)


def one_car_per_frame(
    num_frames: int, **gt_fields: object
) -> tuple[list[KittiLabels], list[KittiLabels], list[Obj]]:
    """(gt frames, perfect detection frames, gt objects): one car per frame, scores 0.99 down."""
    gts = [Obj(**gt_fields) for _ in range(num_frames)]  # type: ignore[arg-type]
    dets = [replace(o, score=0.99 - 0.001 * i, truncated=0.0, occluded=0)
            for i, o in enumerate(gts)]
    return [frame([o]) for o in gts], [frame([d]) for d in dets], dets

"""Text table and JSON file of a KITTI evaluation result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from monotakd_ros.errors import EvaluationError

if TYPE_CHECKING:
    from monotakd_ros.eval.kitti_eval import KittiEvalResult

_ROW_LABELS = {"bbox": "bbox", "bev": "bev ", "3d": "3d  ", "aos": "aos "}


def format_table(result: KittiEvalResult) -> str:
    """Per class an R11 block then an R40 block, one ``metric AP: easy, moderate, hard`` row each.

    The layout follows OpenPCDet's printout so that numbers can be compared line by line.
    """
    lines = [f"KITTI evaluation over {result.num_frames} frames (AP in %: Easy, Moderate, Hard)"]
    for cls in result.classes:
        threshold = f"{result.min_overlap[cls]:.2f}"
        counted = ", ".join(str(int(n)) for n in result.num_counted_gt[cls])
        for points in (11, 40):
            lines.append(
                f"{cls} AP_R{points}@{threshold}, {threshold}, {threshold}:"
                f"  (ground truth counted: {counted})"
            )
            for metric in result.metrics:
                ap = result.average_precision(cls, metric, points)
                values = ", ".join(f"{value:.4f}" for value in ap)
                lines.append(f"{_ROW_LABELS[metric]} AP:{values}")
    return "\n".join(lines) + "\n"


def write_json(path: Path, result: KittiEvalResult) -> None:
    """Write ``result.to_json_dict()`` to ``path`` (folders created), pretty-printed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_json_dict(), indent=2) + "\n")
    except OSError as err:
        raise EvaluationError(f"{path}: cannot write the JSON result ({err})") from err

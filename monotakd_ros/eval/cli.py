"""``monotakd-eval``: KITTI evaluation of a folder of prediction files against label_2 files."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from monotakd_ros.data.kitti.labels import KittiLabels, read_label_file
from monotakd_ros.data.kitti.object_dataset import read_image_set
from monotakd_ros.errors import DatasetError, EvaluationError, MonotakdError
from monotakd_ros.eval.difficulty import EVALUATED_CLASSES
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.eval.report import write_json

logger = logging.getLogger("monotakd_ros.eval.cli")

_MISSING_EXAMPLES = 5  # how many missing prediction ids to name in the log


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of monotakd-eval."""
    parser = argparse.ArgumentParser(
        prog="monotakd-eval",
        description="KITTI 3D object evaluation (bbox, BEV, 3D, AOS; R40 and R11) of prediction "
        "files (label_2 format with a 16th score column) against ground truth label_2 files.",
    )
    parser.add_argument("--gt-labels", type=Path, required=True,
                        help="folder of ground truth label_2 files (000000.txt, ...)")
    parser.add_argument("--pred-labels", type=Path, required=True,
                        help="folder of prediction files; a missing file means no detections")
    parser.add_argument("--split", type=Path, default=None,
                        help="ImageSets file listing the frame ids (default: every gt file)")
    parser.add_argument("--classes", nargs="+", default=list(EVALUATED_CLASSES),
                        help="classes to evaluate (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the APs as JSON to this file")
    return parser


def _existing_folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else DatasetError naming it."""
    if not path.is_dir():
        raise DatasetError(f"{what} folder {path} does not exist or is not a folder")
    return path


def frame_ids(gt_dir: Path, split: Path | None) -> list[str]:
    """Ids to evaluate: the split file's, or the stems of every ``*.txt`` in ``gt_dir``."""
    if split is not None:
        return read_image_set(split)
    ids = sorted(path.stem for path in gt_dir.glob("*.txt"))
    if not ids:
        raise DatasetError(f"ground truth folder {gt_dir} holds no *.txt label files")
    return ids


def check_prediction_ids(gt_dir: Path, pred_dir: Path, ids: Sequence[str]) -> None:
    """Raise EvaluationError when prediction files name frames that have no ground truth.

    Mismatched ids (``0.txt`` against ``000000.txt``, another data set's predictions, swapped
    folders) would otherwise score every frame as "no detections": AP 0 and exit status 0.
    """
    gt_ids = {path.stem for path in gt_dir.glob("*.txt")}
    pred_ids = sorted(path.stem for path in pred_dir.glob("*.txt"))
    unmatched = [frame_id for frame_id in pred_ids if frame_id not in gt_ids]
    if unmatched:
        examples = ", ".join(f"{frame_id}.txt" for frame_id in unmatched[:_MISSING_EXAMPLES])
        raise EvaluationError(
            f"{len(unmatched)} of {len(pred_ids)} prediction files in {pred_dir} match no ground "
            f"truth file in {gt_dir} (e.g. {examples}): the frame ids differ")
    if ids and not set(ids) & set(pred_ids):
        raise EvaluationError(
            f"none of the {len(ids)} frames to evaluate has a prediction file in {pred_dir} "
            f"(e.g. {ids[0]}.txt); write an empty file for a frame without detections")


def load_frames(
    gt_dir: Path, pred_dir: Path, ids: Sequence[str]
) -> tuple[list[KittiLabels], list[KittiLabels], list[str]]:
    """(ground truth, predictions, ids lacking a prediction file) for ``ids``, in order."""
    gt_frames, pred_frames, missing = [], [], []
    for frame_id in ids:
        gt_path = gt_dir / f"{frame_id}.txt"
        if not gt_path.is_file():
            raise DatasetError(f"ground truth file {gt_path} is missing (frame {frame_id!r})")
        gt_frames.append(read_label_file(gt_path))
        pred_path = pred_dir / f"{frame_id}.txt"
        if not pred_path.exists():
            missing.append(frame_id)
            pred_frames.append(KittiLabels())
            continue
        predictions = read_label_file(pred_path)
        if len(predictions) and predictions.score is None:
            raise EvaluationError(
                f"{pred_path}: predictions need a score as 16th field on every line"
            )
        pred_frames.append(predictions)
    return gt_frames, pred_frames, missing


def run(args: argparse.Namespace) -> str:
    """Evaluate as ``args`` says; returns the table (and writes the JSON when asked)."""
    gt_dir = _existing_folder(args.gt_labels, "ground truth")
    pred_dir = _existing_folder(args.pred_labels, "prediction")
    ids = frame_ids(gt_dir, args.split)
    check_prediction_ids(gt_dir, pred_dir, ids)
    gt_frames, pred_frames, missing = load_frames(gt_dir, pred_dir, ids)
    if missing:
        examples = ", ".join(missing[:_MISSING_EXAMPLES])
        logger.warning("%d of %d frames have no prediction file in %s (counted as no detections)"
                       ", e.g. %s", len(missing), len(ids), pred_dir, examples)
    result = evaluate_kitti(gt_frames, pred_frames, classes=args.classes)
    if args.json is not None:
        write_json(args.json, result)
        logger.info("wrote %s", args.json)
    return result.format_table()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (0 ok, 2 bad input)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        table = run(args)
    except MonotakdError as err:
        print(f"monotakd-eval: error: {err}", file=sys.stderr)
        return 2
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

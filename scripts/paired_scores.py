#!/usr/bin/env python3
r"""Paired per-seed differences of two models' KITTI APs, with 95 % intervals, as Markdown.

Reads the JSON files of ``scripts/evaluate_checkpoint.py`` (one per model and seed, all on the
same split) and, for one class, prints AP3D and APBEV R40 at every difficulty: both models'
mean ± sample std, the per-seed differences (first − second), their mean, sample std, 95 %
t interval and verdict (``monotakd_ros.eval.paired``: it holds only when the whole interval
lies above 0). Files pair up by position: seed i of ``--first`` with seed i of ``--second``.
With ``--second-bev`` every row compares against the second model's APBEV at that difficulty:
a box's 3D IoU never exceeds its BEV IoU, so that is a ceiling on the second model's AP3D.

    python scripts/paired_scores.py --class Car --seeds 0 1 2 \
        --first runs/teacher_s{0,1,2}_test.json --second runs/ta_s{0,1,2}_test.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monotakd_ros.eval.paired import paired_stats
from monotakd_ros.training.ablation_report import mean_std_cell

METRICS = (("3d", "AP3D"), ("bev", "APBEV"))
DIFFICULTIES = ("Easy", "Moderate", "Hard")


class ScoreFileError(ValueError):
    """A scores file that is missing, malformed or does not fit the others."""


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", type=Path, nargs="+", required=True,
                        help="evaluate_checkpoint JSON files of the first model, one per seed")
    parser.add_argument("--second", type=Path, nargs="+", required=True,
                        help="the same for the second model, in the same seed order")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="seed of each pair")
    parser.add_argument("--names", nargs=2, default=("first", "second"),
                        help="labels of the two models")
    parser.add_argument("--class", dest="class_name", default="Car", help="default Car")
    parser.add_argument("--second-bev", action="store_true",
                        help="compare with the second model's APBEV in every row (a ceiling "
                             "on its AP3D)")
    return parser


def read_scores(path: Path, class_name: str) -> tuple[str, dict[str, list[float]]]:
    """(split, {"3d": [E, M, H], "bev": [E, M, H]}) of one class from one scores file."""
    try:
        scores = json.loads(path.read_text())
        per_metric = scores["ap_r40"][class_name]
        values = {key: [float(v) for v in per_metric[key]] for key, _ in METRICS}
        split = str(scores["split"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ScoreFileError(f"{path}: not a scores file with class {class_name!r}: {err}"
                             ) from err
    if any(len(v) != len(DIFFICULTIES) or not np.all(np.isfinite(v)) for v in values.values()):
        raise ScoreFileError(f"{path}: expected 3 finite APs per metric")
    return split, values


def paired_table(first: Sequence[dict[str, list[float]]], second: Sequence[dict[str, list[float]]],
                 seeds: Sequence[int], names: Sequence[str], second_bev: bool = False) -> str:
    """Markdown rows: metric × difficulty with both means, the differences and the verdict.

    ``second_bev``: the second model's APBEV stands in for its value in every row.
    """
    lines = [f"| metric | {names[0]} mean ± std | {names[1]} mean ± std | per-seed "
             f"{names[0]} − {names[1]} (seeds {', '.join(map(str, seeds))}) | mean ± std | "
             "95 % CI | verdict |", "|---|---|---|---|---|---|---|"]
    for key, label in METRICS:
        for d, difficulty in enumerate(DIFFICULTIES):
            a = np.array([scores[key][d] for scores in first])
            b = np.array([scores["bev" if second_bev else key][d] for scores in second])
            stats = paired_stats(dict(zip(seeds, (a - b).tolist(), strict=True)))
            row = f"{label} {difficulty}" + (" vs APBEV" if second_bev else "")
            lines.append(
                f"| {row} | {_mean_std(a)} | {_mean_std(b)} | "
                + ", ".join(f"{v:+.2f}" for v in stats.differences)
                + f" | {stats.mean:+.2f} ± {stats.std:.2f} | "
                f"[{stats.ci_low:+.2f}, {stats.ci_high:+.2f}] | {stats.verdict} |")
    return "\n".join(lines)


def _mean_std(values: np.ndarray) -> str:
    return mean_std_cell(float(values.mean()),
                         float(values.std(ddof=1)) if len(values) > 1 else math.nan)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; returns the exit code (2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if not len(args.first) == len(args.second) == len(args.seeds):
            raise ScoreFileError(f"--first ({len(args.first)}), --second ({len(args.second)}) "
                                 f"and --seeds ({len(args.seeds)}) must have the same length")
        if len(set(args.seeds)) != len(args.seeds):
            raise ScoreFileError(f"--seeds repeats a seed: {args.seeds}")
        read = [read_scores(p, args.class_name) for p in [*args.first, *args.second]]
    except ScoreFileError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    splits = sorted({split for split, _ in read})
    if len(splits) != 1:
        sys.stderr.write(f"error: the files were scored on different splits: {splits}\n")
        return 2
    scores = [values for _, values in read]
    n = len(args.seeds)
    sys.stdout.write(f"{args.class_name}, R40, split {splits[0]!r}, n = {n} seed pairs; "
                     "± is the sample std\n\n")
    sys.stdout.write(paired_table(scores[:n], scores[n:], args.seeds, args.names,
                                  args.second_bev) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

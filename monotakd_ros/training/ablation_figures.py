"""Ablation figures: validation curves per row (to pick the step budget) and the claim figure.

``val_curve_<row>.png``: selection-split Car AP3D R40 Moderate against the step, one line per
seed, from each run's ``val_log.csv``. ``claim.png``: left, the students' report-split AP3D
Moderate per seed (points of one seed joined); right, the paired differences per seed with
their mean and 95 % interval. Sizes are fixed (``figsize`` × ``DPI``, no tight crop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: training machines have no display
import matplotlib.pyplot as plt  # noqa: E402

from monotakd_ros.training.ablation_report import (  # noqa: E402
    ComparisonResult,
    compare,
    moderate_values,
)
from monotakd_ros.training.ablation_results import Results  # noqa: E402
from monotakd_ros.training.ablation_rows import PAIRED, ROWS  # noqa: E402
from monotakd_ros.training.logging_utils import read_csv_rows  # noqa: E402

DPI = 100
CURVE_SIZE_IN = (6.4, 4.0)  # 640 × 400 px
CLAIM_SIZE_IN = (13.0, 5.0)  # 1300 × 500 px
CURVE_COLUMN = "car_ap3d_r40_moderate"
SHORT_NAMES = {"student_none": "none", "student_response": "response", "student_imd": "IMD",
               "student_cmrd": "CMRD", "student_takd": "TAKD", "student_cmkd": "CMKD",
               "student_upstream": "upstream"}


def seed_curves(out: Path, row_key: str) -> dict[int, list[tuple[float, float]]]:
    """Seed -> (step, AP3D Moderate) of ``out/seed_N/<row>/val_log.csv``, where logged."""
    curves: dict[int, list[tuple[float, float]]] = {}
    for seed_dir in sorted(out.glob("seed_*")):
        suffix = seed_dir.name.removeprefix("seed_")
        rows = read_csv_rows(seed_dir / row_key / "val_log.csv") if suffix.isdigit() else []
        points = [(float(r["step"]), float(r[CURVE_COLUMN])) for r in rows
                  if r.get(CURVE_COLUMN, "") not in ("", None)]
        if points:
            curves[int(suffix)] = points
    return curves


def write_validation_curves(out: Path, selection_split: str) -> list[Path]:
    """One PNG per row that validated during training; returns the files written."""
    written = []
    for row in ROWS:
        curves = seed_curves(out, row.key)
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=CURVE_SIZE_IN, dpi=DPI)
        for seed, points in sorted(curves.items()):
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, marker="o", markersize=3, linewidth=1.0, label=f"seed {seed}")
        ax.set_title(f"{row.title}: validation during training", fontsize=9)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(f"Car AP3D R40 Mod. ({selection_split!r}, %)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        path = out / f"val_curve_{row.key}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        written.append(path)
    return written


def _draw_students(ax: plt.Axes, results: Results, report_split: str) -> None:
    values = moderate_values(results, "ap3d_r40")
    keys = [row.key for row in ROWS if row.stage == "student" and row.key in values]
    seeds = sorted({s for key in keys for s in values[key]})
    for seed in seeds:
        points = [(i, values[k][seed]) for i, k in enumerate(keys) if seed in values[k]]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", linewidth=0.8, alpha=0.8, label=f"seed {seed}")
    ax.set_xticks(range(len(keys)), [SHORT_NAMES.get(k, k) for k in keys], fontsize=8)
    ax.set_ylabel(f"Car AP3D R40 Moderate ({report_split!r}, %)")
    ax.set_title("Students per seed (one line per seed)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def _draw_differences(ax: plt.Axes, compared: Sequence[ComparisonResult]) -> None:
    shown = [item for item in compared if item.stats is not None]
    for y, item in enumerate(shown):
        stats = item.stats
        assert stats is not None  # filtered above
        ax.scatter(stats.differences, [y] * stats.n, s=14, color="0.5", zorder=2)
        if not math.isnan(stats.ci_low):
            colour = "tab:green" if stats.ci_low > 0 else "tab:red"
            ax.errorbar([stats.mean], [y], xerr=[[stats.mean - stats.ci_low],
                                                 [stats.ci_high - stats.mean]],
                        fmt="D", color=colour, capsize=4, zorder=3)
        else:
            ax.scatter([stats.mean], [y], marker="D", color="tab:red", zorder=3)
    ax.axvline(0.0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(shown)), [item.comparison.name for item in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference, AP3D Moderate (points: seeds; bar: mean ± 95 % CI)")
    ax.set_title("Paired differences (green: whole interval above 0)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)


def write_claim_figure(out: Path, results: Results, report_split: str) -> Path:
    """``out/claim.png``: students per seed and the paired differences with 95 % CIs."""
    compared = compare(results, PAIRED)["ap3d_r40"]
    fig, (left, right) = plt.subplots(1, 2, figsize=CLAIM_SIZE_IN, dpi=DPI,
                                      gridspec_kw={"width_ratios": [1.0, 1.1]})
    _draw_students(left, results, report_split)
    _draw_differences(right, compared)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.92, wspace=0.35)
    path = out / "claim.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path

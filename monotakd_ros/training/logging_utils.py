"""Per-step CSV logs of loss terms and validation metrics, and PNG curves drawn from them."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: training machines have no display
import matplotlib.pyplot as plt  # noqa: E402

LOG = logging.getLogger(__name__)


class CsvLog:
    """Append-only CSV keyed by ``step``; the columns are fixed by the first row written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = self._existing_columns()

    def _existing_columns(self) -> list[str]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            header = next(csv.reader(f), [])
        return list(header)

    def truncate_after(self, step: int) -> None:
        """Drop rows with step >= ``step`` (written by a run that is being resumed)."""
        rows = read_csv_rows(self.path)
        if not rows:
            return
        kept = [row for row in rows if float(row["step"]) < step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            for row in kept:
                writer.writerow({k: row.get(k, "") for k in self.columns})

    def append(self, step: int, values: Mapping[str, float]) -> None:
        """Write one row; keys not in the header are added by rewriting the file once."""
        row = {"step": step, **values}
        new_keys = [k for k in row if k not in self.columns]
        if new_keys:
            self._extend_columns(new_keys)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writerow({k: _format(row.get(k, "")) for k in self.columns})

    def _extend_columns(self, new_keys: list[str]) -> None:
        rows = read_csv_rows(self.path)
        self.columns = [*self.columns, *new_keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in self.columns})


def _format(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV log as dicts (empty when the file does not exist)."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def plot_loss_curves(csv_path: Path, png_path: Path, skip: tuple[str, ...] = ("lr",)) -> bool:
    """Draw every numeric column of a step-keyed CSV against step; False if nothing to draw."""
    rows = read_csv_rows(csv_path)
    if not rows:
        return False
    columns = [c for c in rows[0] if c != "step" and c not in skip]
    if not columns:
        return False
    fig, axes = plt.subplots(len(columns), 1, figsize=(7, 2.2 * len(columns)), sharex=True,
                             squeeze=False)
    for ax, column in zip(axes[:, 0], columns, strict=True):
        points = [(float(r["step"]), float(r[column])) for r in rows if _is_number(r[column])]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, linewidth=1.0)
            if all(v > 0 for v in values) and max(values) / min(values) > 100:
                ax.set_yscale("log")  # loss terms span decades early in training
        ax.set_ylabel(column, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return True


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False

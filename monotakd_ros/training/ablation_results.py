"""One evaluated ablation row (``seed_N/<row>/ablation_result.json``): what, where, how long.

A row's checkpoint is chosen on the selection split (``best`` when validation ran during
training, else ``last``) and scored on the report split; the file keeps both splits' APs, the
chosen step, the machine line and the wall time, so a merged table can say all of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monotakd_ros.errors import ConfigError

RESULT_FILE = "ablation_result.json"
METRICS = ("ap3d_r40", "apbev_r40")
Triple = tuple[float, float, float]


@dataclass(frozen=True)
class SplitScores:
    """Car AP R40 (percent; Easy, Moderate, Hard) of one checkpoint on one split."""

    split: str
    ap3d_r40: Triple
    apbev_r40: Triple
    num_frames: int


@dataclass(frozen=True)
class RowResult:
    """One row of one seed: report-split and selection-split scores of the chosen checkpoint."""

    report: SplitScores
    selection: SplitScores
    checkpoint: str  # "best" (chosen by validation during training) or "last"
    step: int  # optimiser steps of the chosen checkpoint
    machine: str
    train_s: float  # this process's training time of the row (0 when found trained)
    eval_s: float
    resumed: bool  # training continued from a checkpoint an earlier process left

    @property
    def wall_s(self) -> float:
        """Training plus evaluation seconds of this row."""
        return self.train_s + self.eval_s

    def as_dict(self) -> dict[str, object]:
        """Plain data for ``ablation_result.json``."""
        return {"report_split": self.report.split, "selection_split": self.selection.split,
                "report": _scores_dict(self.report), "selection": _scores_dict(self.selection),
                "checkpoint": self.checkpoint, "step": self.step, "machine": self.machine,
                "train_s": self.train_s, "eval_s": self.eval_s, "wall_s": self.wall_s,
                "resumed": self.resumed}


def _scores_dict(scores: SplitScores) -> dict[str, object]:
    return {"split": scores.split, "ap3d_r40": list(scores.ap3d_r40),
            "apbev_r40": list(scores.apbev_r40), "num_frames": scores.num_frames}


def _triple(data: dict, key: str, path: Path) -> Triple:
    values = tuple(float(v) for v in data[key])
    if len(values) != 3:
        raise ConfigError(f"{path}: '{key}' needs 3 values (Easy, Moderate, Hard), got "
                          f"{len(values)}")
    return values  # type: ignore[return-value]


def _scores(data: dict, path: Path) -> SplitScores:
    return SplitScores(split=str(data["split"]), ap3d_r40=_triple(data, "ap3d_r40", path),
                       apbev_r40=_triple(data, "apbev_r40", path),
                       num_frames=int(data["num_frames"]))


def write_row_result(path: Path, result: RowResult) -> None:
    """Write the row's JSON (whole, then renamed, so a kill leaves the old file or the new)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    temporary.replace(path)


def read_row_result(path: Path) -> RowResult:
    """A stored row; ConfigError names the file when it is unreadable or of the old protocol."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: unreadable ablation result ({err}); delete it to "
                          "re-evaluate the row") from err
    if not isinstance(data, dict) or "report_split" not in data:
        raise ConfigError(f"{path}: an ablation result of the old protocol (no report split "
                          "recorded); delete it to re-evaluate the row (its training is kept)")
    try:
        return RowResult(report=_scores(data["report"], path),
                         selection=_scores(data["selection"], path),
                         checkpoint=str(data["checkpoint"]), step=int(data["step"]),
                         machine=str(data["machine"]), train_s=float(data["train_s"]),
                         eval_s=float(data["eval_s"]), resumed=bool(data["resumed"]))
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: malformed ablation result ({type(err).__name__}: {err}); "
                          "delete it to re-evaluate the row") from err


Results = dict[str, dict[int, RowResult]]  # row key -> seed -> result


def collected_results(out: Path, row_keys: Iterable[str]) -> Results:
    """Every ``seed_N/<row>/ablation_result.json`` under ``out``."""
    results: Results = {}
    keys = list(row_keys)
    for seed_dir in sorted(out.glob("seed_*")):
        suffix = seed_dir.name.removeprefix("seed_")
        if not suffix.isdigit():
            continue
        for key in keys:
            path = seed_dir / key / RESULT_FILE
            if path.is_file():
                results.setdefault(key, {})[int(suffix)] = read_row_result(path)
    if not results:
        raise ConfigError(f"{out}: no seed_N/<row>/{RESULT_FILE} to merge")
    return results


def check_one_protocol(results: Results) -> tuple[str, str]:
    """The (report, selection) splits all rows share; ConfigError when rows were mixed."""
    pairs = {(r.report.split, r.selection.split): (key, seed)
             for key, per_seed in results.items() for seed, r in per_seed.items()}
    if len(pairs) != 1:
        listed = ", ".join(f"{key} seed {seed}: report {rep!r}, selection {sel!r}"
                           for (rep, sel), (key, seed) in sorted(pairs.items()))
        raise ConfigError(f"ablation rows were scored on different splits ({listed}); delete "
                          "the odd ones' ablation_result.json to re-evaluate them")
    return next(iter(pairs))

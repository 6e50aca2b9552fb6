"""``ablation.md`` / ``ablation.json``: per-row scores on the report split and paired comparisons.

Every number is on the report split; checkpoints were chosen on the selection split. The std
is the sample std (ddof = 1) everywhere, and an interval is mean ± t(0.975, n − 1) · std / √n.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.eval.paired import PairedStats, contrast_per_seed, paired_stats
from monotakd_ros.training.ablation_results import METRICS, Results, check_one_protocol
from monotakd_ros.training.ablation_rows import CLAIM_KEYS, FACTORIAL, PAIRED, ROWS, Comparison

MODERATE = 1  # index of Moderate in (Easy, Moderate, Hard)
COMPARED_METRICS = {"ap3d_r40": "Car AP3D R40 Moderate", "apbev_r40": "Car APBEV R40 Moderate"}


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; nan for a single seed)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def summarise(results: Results) -> list[dict]:
    """Per row in table order: per-seed record and report-split mean/std per metric."""
    summary = []
    for row in ROWS:
        per_seed = results.get(row.key, {})
        if not per_seed:
            continue
        seeds = sorted(per_seed)
        entry: dict = {"key": row.key, "title": row.title, "stage": row.stage,
                       "distill": row.distill, "seeds": seeds,
                       "per_seed": {str(s): per_seed[s].as_dict() for s in seeds},
                       "mean": {}, "std": {},
                       "wall_s_total": sum(per_seed[s].wall_s for s in seeds)}
        for metric in METRICS:
            columns = np.array([getattr(per_seed[s].report, metric) for s in seeds])
            stats = [mean_and_std(columns[:, level]) for level in range(3)]
            entry["mean"][metric] = [m for m, _ in stats]
            entry["std"][metric] = [s for _, s in stats]
        summary.append(entry)
    return summary


def moderate_values(results: Results, metric: str) -> dict[str, dict[int, float]]:
    """Row -> seed -> the report split's Moderate AP of ``metric``."""
    return {key: {seed: getattr(r.report, metric)[MODERATE] for seed, r in per_seed.items()}
            for key, per_seed in results.items()}


@dataclass(frozen=True)
class ComparisonResult:
    """One comparison on one metric; ``stats`` is None when no seed has every row."""

    comparison: Comparison
    metric: str
    stats: PairedStats | None

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        base: dict[str, object] = {"key": self.comparison.key, "name": self.comparison.name,
                                   "weights": self.comparison.weights,
                                   "question": self.comparison.question, "metric": self.metric}
        if self.stats is None:
            return base | {"n": 0, "verdict": "not run: a row is missing"}
        return base | self.stats.as_dict()


def compare(results: Results, comparisons: Sequence[Comparison] = PAIRED + FACTORIAL
            ) -> dict[str, list[ComparisonResult]]:
    """Every comparison on AP3D and APBEV Moderate, paired over the seeds its rows share."""
    compared: dict[str, list[ComparisonResult]] = {}
    for metric in COMPARED_METRICS:
        values = moderate_values(results, metric)
        compared[metric] = []
        for comparison in comparisons:
            per_seed = contrast_per_seed(values, comparison.weights)
            stats = paired_stats(per_seed) if per_seed else None
            compared[metric].append(ComparisonResult(comparison, metric, stats))
    return compared


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.2f}"


def comparison_lines(compared: Sequence[ComparisonResult]) -> list[str]:
    """Markdown table: per-seed differences, mean, std, n, 95 % interval, verdict."""
    lines = ["| Comparison | Per-seed differences (seed: value) | Mean | Std | n | 95 % CI | "
             "> 0? |", "|---|---|---|---|---|---|---|"]
    for item in compared:
        stats = item.stats
        if stats is None:
            lines.append(f"| {item.comparison.name} | – | – | – | 0 | – | not run: a row is "
                         "missing |")
            continue
        diffs = ", ".join(f"{s}: {d:+.2f}" for s, d in zip(stats.seeds, stats.differences,
                                                            strict=True))
        std = "–" if math.isnan(stats.std) else f"{stats.std:.2f}"
        interval = ("–" if math.isnan(stats.ci_low)
                    else f"[{_number(stats.ci_low)}, {_number(stats.ci_high)}]")
        lines.append(f"| {item.comparison.name} | {diffs} | {stats.mean:+.2f} | {std} | "
                     f"{stats.n} | {interval} | {stats.verdict} |")
    return lines


def claim_lines(compared: Sequence[ComparisonResult]) -> list[str]:
    """One plain sentence per part of the paper's claim."""
    by_key = {item.comparison.key: item for item in compared}
    lines = []
    for key in CLAIM_KEYS:
        item = by_key.get(key)
        if item is None:
            continue
        verdict = "not run: a row is missing" if item.stats is None else item.stats.verdict
        lines.append(f"- {item.comparison.question} ({item.comparison.name}): **{verdict}**")
    return lines


def mean_std_cell(mean: float, std: float) -> str:
    """``mean ± std`` to two decimals; a dash for the std of a single seed (NaN)."""
    return f"{mean:.2f} ± {'–' if math.isnan(std) else f'{std:.2f}'}"


def row_table_lines(summary: Sequence[dict]) -> list[str]:
    """Rows × (AP3D, APBEV) × (Easy, Moderate, Hard) as mean ± std, with seeds and time."""
    levels = ("Easy", "Mod.", "Hard")
    header = ["Model", *[f"AP3D {lv}" for lv in levels], *[f"APBEV {lv}" for lv in levels],
              "Seeds", "Wall time (min, all seeds)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary:
        cells = [entry["title"]]
        for metric in METRICS:
            cells += [mean_std_cell(m, s) for m, s in zip(entry["mean"][metric],
                                                          entry["std"][metric], strict=True)]
        cells += [", ".join(str(s) for s in entry["seeds"]), f"{entry['wall_s_total'] / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def per_seed_lines(summary: Sequence[dict], machines: Mapping[str, int],
                   splits: tuple[str, str]) -> list[str]:
    """Every row × seed: chosen checkpoint and step, selection vs report AP3D Mod., time."""
    report_split, selection_split = splits
    lines = [f"| Row | Seed | Checkpoint | Step | AP3D Mod. on {selection_split!r} (selection) | "
             f"AP3D Mod. on {report_split!r} (report) | Train s | Eval s | Machine |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in summary:
        for seed, record in entry["per_seed"].items():
            resumed = " (resumed)" if record["resumed"] else ""
            lines.append(
                f"| {entry['key']} | {seed} | {record['checkpoint']} | {record['step']} | "
                f"{record['selection']['ap3d_r40'][MODERATE]:.2f} | "
                f"{record['report']['ap3d_r40'][MODERATE]:.2f} | {record['train_s']:.0f}"
                f"{resumed} | {record['eval_s']:.0f} | M{machines[record['machine']]} |")
    return lines


def ablation_markdown(results: Results, command: str, notes: str) -> str:
    """The whole report: protocol, the claim, paired comparisons, rows, per-seed records."""
    report_split, selection_split = check_one_protocol(results)
    summary, compared = summarise(results), compare(results)
    machines = {m: i + 1 for i, m in enumerate(sorted(
        {r.machine for per_seed in results.values() for r in per_seed.values()}))}
    frames = sorted({r.report.num_frames for per_seed in results.values()
                     for r in per_seed.values()})
    paired_count = len(PAIRED)
    lines = [
        f"# MonoTAKD ablation (Car, AP R40 in %, on the {report_split!r} split)", "",
        f"- Reported on split **{report_split!r}** ({', '.join(map(str, frames))} frames); "
        f"checkpoints chosen on **{selection_split!r}** (`best` when validation ran during "
        "training, else `last`).",
        f"- Command: `{command}`", f"- {notes}",
        "- Std: sample std (ddof = 1). 95 % CI: mean ± t(0.975, n − 1) · std / √n, paired per "
        "seed over the seeds both sides have. A comparison holds only when the whole interval "
        "lies above 0.",
        *[f"- Machine M{i}: {m}" for m, i in machines.items()], "",
        f"## The claim (Car AP3D R40 Moderate, {report_split!r} split)", "",
        *claim_lines(compared["ap3d_r40"]), ""]
    for metric, title in COMPARED_METRICS.items():
        lines += [f"## Paired comparisons: {title}, {report_split!r} split", "",
                  *comparison_lines(compared[metric][:paired_count]), "",
                  f"IMD × CMRD factorial (response on; {title}):", "",
                  *comparison_lines(compared[metric][paired_count:]), ""]
    lines += [f"## Rows: mean ± std over seeds, {report_split!r} split", "",
              *row_table_lines(summary), "",
              "## Per row and seed", "",
              *per_seed_lines(summary, machines, (report_split, selection_split))]
    return "\n".join(lines) + "\n"


def ablation_json(results: Results, command: str, notes: str) -> dict:
    """Everything of the markdown as plain data."""
    report_split, selection_split = check_one_protocol(results)
    compared = compare(results)
    return {"command": command, "notes": notes, "report_split": report_split,
            "selection_split": selection_split, "std": "sample std, ddof = 1",
            "confidence": 0.95,
            "seeds": sorted({s for per_seed in results.values() for s in per_seed}),
            "rows": summarise(results),
            "comparisons": {m: [c.as_dict() for c in items] for m, items in compared.items()}}


def _without_nan(value: object) -> object:
    """``value`` with every nan float as None (strict JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def write_report_files(out: Path, results: Results, command: str, notes: str
                       ) -> dict[str, Path]:
    """``ablation.md`` and ``ablation.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    markdown, table = out / "ablation.md", out / "ablation.json"
    markdown.write_text(ablation_markdown(results, command, notes))
    table.write_text(json.dumps(_without_nan(ablation_json(results, command, notes)), indent=2,
                                allow_nan=False) + "\n")
    return {"markdown": markdown, "json": table}

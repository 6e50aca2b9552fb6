"""``monotakd-ablation``: teacher, TA and the four students per seed, tabulated as mean ± std.

For every seed: train the LiDAR teacher and the TA, then students with distill none, cmkd,
imd_response and takd from that seed's teacher/TA; evaluate each final model on the val split
and write ``ablation.md`` and ``ablation.json`` (Car AP3D / APBEV at R40, Easy/Moderate/Hard).
A run folder that already holds a checkpoint is resumed, and a row whose evaluation was written
(``seed_N/<row>/ablation_result.json``) is kept, so an interrupted ablation continues; ``--merge``
tabulates what separate processes (one per seed, e.g. side by side on one GPU) wrote.

Training reads the prepared split and, for the students, the cached frozen targets
(``--data-cache``, ``--frozen-cache``; see docs/training.md). With ``--budget-min`` the step
times are measured first and the steps per stage (and if need be the seeds) are fitted to the
wall-clock budget; the plan is logged before any training starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.budget import Plan, Workload, calibrate, fit_plan
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import choose_threads, default_cache_dir
from monotakd_ros.training.distributed import resolve_device
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.runner import StageRequest, run_stage
from monotakd_ros.training.stages import StageName
from monotakd_ros.training.validation import ValidationResult, evaluate_checkpoint

LOG = logging.getLogger("monotakd_ros.training.ablation")


@dataclass(frozen=True)
class AblationRow:
    """One line of the table: which stage, with which distillation preset."""

    key: str
    title: str
    stage: StageName
    distill: str | None = None


ROWS: tuple[AblationRow, ...] = (
    AblationRow("teacher", "LiDAR teacher", "teacher"),
    AblationRow("ta", "Teaching assistant (LiDAR depth)", "ta"),
    AblationRow("student_none", "Student, no KD", "student", "none"),
    AblationRow("student_cmkd", "Student, CMKD (F_S vs F_T, no TA)", "student", "cmkd"),
    AblationRow("student_imd", "Student, TAKD without CMRD (IMD + response)", "student",
                "imd_response"),
    AblationRow("student_takd", "Student, full TAKD", "student", "takd"),
)
METRICS = ("ap3d_r40", "apbev_r40")


def default_config_dir() -> Path:
    """``config/`` of a source checkout, else the installed ament share folder."""
    source = Path(__file__).resolve().parents[2] / "config"
    if source.is_dir():
        return source
    return Path(sys.prefix) / "share" / "monotakd_ros" / "config"


def machine_description(device: torch.device) -> str:
    """Platform, CPU count, torch version and the device (with the GPU name on CUDA)."""
    text = (f"{platform.platform()}, Python {platform.python_version()}, torch "
            f"{torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
            f"threads, device {device}")
    if device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    return text


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single seed)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summarise(results: Mapping[str, Mapping[int, ValidationResult]]) -> list[dict]:
    """Per row: per-seed APs and their mean/std per metric and difficulty."""
    summary = []
    for row in ROWS:
        per_seed = results.get(row.key, {})
        if not per_seed:
            continue
        entry: dict = {"key": row.key, "title": row.title, "stage": row.stage,
                       "distill": row.distill, "seeds": sorted(per_seed), "per_seed": {},
                       "mean": {}, "std": {}}
        for seed in sorted(per_seed):
            result = per_seed[seed]
            entry["per_seed"][str(seed)] = {m: list(getattr(result, m)) for m in METRICS}
        for metric in METRICS:
            columns = np.array([getattr(per_seed[s], metric) for s in sorted(per_seed)])
            stats = [mean_and_std(columns[:, level]) for level in range(3)]
            entry["mean"][metric] = [m for m, _ in stats]
            entry["std"][metric] = [s for _, s in stats]
        summary.append(entry)
    return summary


def ablation_markdown(summary: list[dict], command: str, machine: str, notes: str) -> str:
    """Markdown table: rows × (AP3D, APBEV) × (Easy, Moderate, Hard) as mean ± std."""
    levels = ("Easy", "Mod.", "Hard")
    header = ["Model", *[f"AP3D {lv}" for lv in levels], *[f"APBEV {lv}" for lv in levels],
              "Seeds"]
    lines = [
        "# MonoTAKD ablation (Car, AP R40 in %, on the val split of the data below)", "",
        f"- Command: `{command}`", f"- Machine: {machine}", f"- {notes}",
        "- Cells: mean ± sample std over the seeds.", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
    ]
    for entry in summary:
        cells = [entry["title"]]
        for metric in METRICS:
            cells += [f"{m:.2f} ± {s:.2f}"
                      for m, s in zip(entry["mean"][metric], entry["std"][metric], strict=True)]
        cells.append(", ".join(str(s) for s in entry["seeds"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def train_config_path(args: argparse.Namespace, stage: str) -> Path:
    """``<dir>/<prefix><stage>.yaml``, e.g. config/train/kitti_r50_student.yaml."""
    folder = args.train_config_dir or default_config_dir() / "train"
    return folder / f"{args.train_config_prefix}{stage}.yaml"


RESULT_FILE = "ablation_result.json"


def train_overrides(args: argparse.Namespace) -> dict[str, object]:
    """TrainConfig fields the ablation sets on every stage."""
    overrides: dict[str, object] = {"data_cache": args.data_cache, "threads": args.threads,
                                    "frozen_cache": args.frozen_cache, "resident": args.resident}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.budget_min is not None:
        overrides["val_interval"] = 0  # the plan counts one evaluation per row, after training
    return overrides


def _train_and_evaluate(row: AblationRow, seed: int, args: argparse.Namespace,
                        seed_dir: Path, device: torch.device) -> ValidationResult:
    run = RunDir(seed_dir / row.key)
    result_file = run.root / RESULT_FILE
    if result_file.is_file():
        LOG.info("seed %d: %s already evaluated (%s), kept", seed, row.title, result_file)
        return result_from_json(result_file)
    teacher = assistant = None
    if row.stage == "student":
        teacher, assistant = (_trained(RunDir(seed_dir / k)) for k in ("teacher", "ta"))
    request = StageRequest(
        stage=row.stage, model_config=args.model_config,
        train_config=train_config_path(args, row.stage), data=args.data, out=run.root,
        unlabeled_drives=tuple(args.unlabeled_drives) if row.stage == "student" else (),
        teacher=teacher, assistant=assistant, distill=row.distill,
        resume=run.last.exists(), seed=seed, max_steps=args.max_steps, device=args.device,
        cache_dir=args.cache_dir, train_overrides=train_overrides(args),
        command=tuple(args.command))
    LOG.info("seed %d: %s -> %s", seed, row.title, run.root)
    run_stage(request)
    result = evaluate_checkpoint(run.last, row.stage, load_model_config(args.model_config),
                                 args.data, args.val_split, device,
                                 max_frames=args.val_max_frames)
    result_file.write_text(json.dumps({m: list(getattr(result, m)) for m in METRICS}
                                      | {"num_frames": result.num_frames}))
    return result


def result_from_json(path: Path) -> ValidationResult:
    """A row's stored evaluation (the AP triples; the full table is not kept)."""
    try:
        data = json.loads(path.read_text())
        triples = {m: tuple(float(v) for v in data[m]) for m in METRICS}
        return ValidationResult(ap3d_r40=triples["ap3d_r40"],  # type: ignore[arg-type]
                                apbev_r40=triples["apbev_r40"],  # type: ignore[arg-type]
                                num_frames=int(data["num_frames"]), table="")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: unreadable ablation result ({err}); delete it to rerun "
                          "the row") from err


def _trained(run: RunDir) -> Path:
    """The checkpoint a student distils from: ``best`` when validation chose one."""
    return run.best if run.best.exists() else run.last


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of monotakd-ablation."""
    parser = argparse.ArgumentParser(prog="monotakd-ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="KITTI object root")
    parser.add_argument("--out", type=Path, required=True, help="ablation folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--model-config", type=Path, default=None,
                        help="model YAML (default: config/models/small.yaml)")
    parser.add_argument("--train-config-dir", type=Path, default=None,
                        help="folder of the train YAMLs (default: config/train)")
    parser.add_argument("--train-config-prefix", default="",
                        help="YAML names are <prefix>teacher.yaml etc.; 'kitti_r50_' for the "
                             "paper configuration")
    parser.add_argument("--unlabeled-drives", type=Path, nargs="+", default=[])
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--val-max-frames", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="optimiser steps per stage (overrides the train configs; with "
                             "--budget-min an upper bound)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size of every stage (default: the train configs')")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--budget-min", type=float, default=None,
                        help="wall-clock budget in minutes: steps per stage (and seeds, if need "
                             "be) are fitted to it from step times measured first")
    parser.add_argument("--min-steps", type=int, default=50,
                        help="with --budget-min: fewest steps per stage worth running")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: 1 on a CPU of <= 2 cores, else torch's)")
    parser.add_argument("--data-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="train on the prepared split (default) instead of live loading")
    parser.add_argument("--frozen-cache", choices=("off", "fp16", "fp32"), default="fp16",
                        help="students read the teacher/TA targets from a cache (off: live)")
    parser.add_argument("--resident", choices=("auto", "on", "off"), default="auto",
                        help="keep the prepared split on the device (auto: when it fits)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="prepared data and frozen targets (default: OUT/cache)")
    parser.add_argument("--merge", action="store_true",
                        help="only tabulate the rows already evaluated under --out")
    parser.add_argument("--no-report", action="store_true",
                        help="write no ablation.md/json (processes merged later by --merge)")
    return parser


def plan_to_budget(args: argparse.Namespace, device: torch.device) -> Plan:
    """Measure step times on the prepared split and fit steps and seeds to the budget."""
    model_cfg = load_model_config(args.model_config)
    cfg = load_train_config(train_config_path(args, "student"),
                            **{k: v for k, v in train_overrides(args).items()
                               if k in ("batch_size", "threads")})
    calibration = calibrate(args.data, model_cfg, cfg, args.cache_dir, device, args.resident,
                            args.val_split, args.val_max_frames)
    students = [r for r in ROWS if r.stage == "student"]
    work = Workload(teacher_rows=1, ta_rows=1, student_rows=len(students),
                    distilled_rows=sum(r.distill != "none" for r in students),
                    train_frames=calibration.train_frames, val_frames=calibration.val_frames,
                    frozen_cache=args.frozen_cache != "off")
    plan = fit_plan(calibration.times, work, args.budget_min * 60, args.seeds, args.min_steps,
                    args.max_steps, spent_s=time.monotonic() - args.started_s)
    LOG.info("%s", plan.describe(calibration.times, work))
    return plan


def run_ablation(args: argparse.Namespace, command: Sequence[str]) -> dict[str, Path]:
    """Train and evaluate every row for every seed; returns the written report paths."""
    args.command = list(command)
    args.started_s = getattr(args, "started_s", time.monotonic())
    args.model_config = args.model_config or default_config_dir() / "models" / "small.yaml"
    args.cache_dir = args.cache_dir or (args.out / "cache" if args.data_cache
                                        else default_cache_dir())
    for name in ("teacher", "ta", "student"):
        if not train_config_path(args, name).is_file():
            raise ConfigError(f"train config {train_config_path(args, name)} does not exist "
                              "(see --train-config-dir/--train-config-prefix)")
    device = resolve_device(args.device or "auto")
    threads = choose_threads(args.threads, device)
    args.threads = threads
    LOG.info("device %s, %d torch thread(s) (%d CPUs), data %s, frozen targets %s", device,
             threads, os.cpu_count() or 0, "prepared" if args.data_cache else "live",
             args.frozen_cache if args.frozen_cache != "off" else "live")
    results: dict[str, dict[int, ValidationResult]] = {}
    if args.merge:
        results = collected_results(args.out)
    else:
        if args.budget_min is not None:
            if not args.data_cache:
                raise ConfigError("--budget-min measures on the prepared split; drop "
                                  "--no-data-cache")
            plan = plan_to_budget(args, device)
            args.max_steps, args.seeds = plan.steps, list(plan.seeds)
        for seed in args.seeds:
            for row in ROWS:
                result = _train_and_evaluate(row, seed, args, args.out / f"seed_{seed}", device)
                results.setdefault(row.key, {})[seed] = result
                LOG.info("seed %d %s: AP3D R40 %s", seed, row.title, result.ap3d_r40)
        if args.no_report:
            return {}
    return write_reports(args, results, machine_description(device))


def collected_results(out: Path) -> dict[str, dict[int, ValidationResult]]:
    """Every ``seed_N/<row>/ablation_result.json`` under ``out``."""
    results: dict[str, dict[int, ValidationResult]] = {}
    for seed_dir in sorted(out.glob("seed_*")):
        suffix = seed_dir.name.removeprefix("seed_")
        if not suffix.isdigit():
            continue
        for row in ROWS:
            path = seed_dir / row.key / RESULT_FILE
            if path.is_file():
                results.setdefault(row.key, {})[int(suffix)] = result_from_json(path)
    if not results:
        raise ConfigError(f"{out}: no seed_N/<row>/{RESULT_FILE} to merge")
    return results


def write_reports(args: argparse.Namespace, results: dict[str, dict[int, ValidationResult]],
                  machine: str) -> dict[str, Path]:
    """``ablation.md`` and ``ablation.json`` of ``results`` in ``args.out``."""
    summary = summarise(results)
    command_text = shlex.join(args.command)
    steps = "the train configs'" if args.max_steps is None else str(args.max_steps)
    notes = (f"Data: {args.data} (val split {args.val_split!r}); model config "
             f"{args.model_config}; train configs {train_config_path(args, '<stage>')}; "
             f"steps per stage: {steps}")
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = args.out / "ablation.md"
    markdown.write_text(ablation_markdown(summary, command_text, machine, notes))
    table = args.out / "ablation.json"
    seeds = sorted({s for per_seed in results.values() for s in per_seed})
    table.write_text(json.dumps({"command": command_text, "machine": machine, "notes": notes,
                                 "seeds": seeds, "max_steps": args.max_steps,
                                 "rows": summary}, indent=2) + "\n")
    return {"markdown": markdown, "json": table}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.started_s = time.monotonic()
    try:
        written = run_ablation(args, ["monotakd-ablation",
                                      *(sys.argv[1:] if argv is None else argv)])
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    if written:
        LOG.info("wrote %s and %s", written["markdown"], written["json"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``monotakd-ablation``: teacher, TA and the students per seed, with paired comparisons.

For every seed: train the LiDAR teacher and the TA, then one student per distillation preset
(rows in ``ablation_rows.ROWS``; ``--rows`` picks a subset, with the teacher and TA their
presets need). Each row's checkpoint is chosen on the selection split (``--val-split``: the
stage's ``best`` when validation ran during training, else ``last``) and scored on the report
split (``--report-split``, default ``test``, disjoint from the training and selection frames).
``ablation.md`` / ``ablation.json`` hold per-row scores and the paired per-seed comparisons with
95 % intervals; ``claim.png`` and ``val_curve_<row>.png`` the figures.

A run folder that already holds a checkpoint is resumed, and a row whose evaluation was written
(``seed_N/<row>/ablation_result.json``) on the same splits is kept, so an interrupted ablation
continues; ``--merge`` tabulates what separate processes (one per seed) wrote.

With ``--budget-min`` the step times are measured first and the steps per stage (and if need
be the seeds) are fitted to the wall-clock budget; the plan is logged before training starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset
from monotakd_ros.distill.config import distill_preset
from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.ablation_figures import write_claim_figure, write_validation_curves
from monotakd_ros.training.ablation_report import write_report_files
from monotakd_ros.training.ablation_results import (
    RESULT_FILE,
    Results,
    RowResult,
    SplitScores,
    check_one_protocol,
    collected_results,
    read_row_result,
    write_row_result,
)
from monotakd_ros.training.ablation_rows import ROW_KEYS, ROWS, AblationRow, selected_rows
from monotakd_ros.training.budget import Plan, Workload, calibrate, fit_plan
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import choose_threads, default_cache_dir
from monotakd_ros.training.distributed import resolve_device
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.runner import StageRequest, run_stage
from monotakd_ros.training.validation import ValidationResult, evaluate_checkpoint

__all__ = ["ROWS", "build_parser", "main", "run_ablation"]

LOG = logging.getLogger("monotakd_ros.training.ablation")
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
_VAL_KEYS = {"ap3d_r40": "car_ap3d_r40_{}", "apbev_r40": "car_apbev_r40_{}"}


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


def train_config_path(args: argparse.Namespace, stage: str) -> Path:
    """``<dir>/<prefix><stage>.yaml``, e.g. config/train/kitti_r50_student.yaml."""
    folder = args.train_config_dir or default_config_dir() / "train"
    return folder / f"{args.train_config_prefix}{stage}.yaml"


def train_overrides(args: argparse.Namespace) -> dict[str, object]:
    """TrainConfig fields the ablation sets on every stage."""
    overrides: dict[str, object] = {"data_cache": args.data_cache, "threads": args.threads,
                                    "frozen_cache": args.frozen_cache, "resident": args.resident,
                                    "val_split": args.val_split}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.val_max_frames:
        overrides["val_max_frames"] = args.val_max_frames
    if args.val_interval is not None:
        overrides["val_interval"] = args.val_interval
    elif args.budget_min is not None:
        overrides["val_interval"] = 0  # the plan counts the evaluations after training only
    return overrides


def check_splits(args: argparse.Namespace) -> None:
    """Refuse a report split that is the selection split or shares frames with training."""
    if args.report_split == args.val_split and not args.allow_report_on_selection_split:
        raise ConfigError(
            f"--report-split {args.report_split!r} is the split the checkpoints are chosen on "
            f"(--val-split {args.val_split!r}): numbers reported there are biased upwards. "
            "Report on a held-out split (e.g. 'test'), or pass "
            "--allow-report-on-selection-split for old data without one")
    kitti = KittiObjectDataset(args.data, "training")
    report = set(kitti.frame_ids(args.report_split))
    if not report:
        raise ConfigError(f"{args.data}: report split {args.report_split!r} lists no frames "
                          "(generated with --test-fraction 0?); generate one with "
                          "monotakd-synth object --labelled-test or pass --report-split")
    others = {args.val_split} if args.report_split != args.val_split else set()
    others |= {load_train_config(train_config_path(args, stage)).train_split
               for stage in ("teacher", "ta", "student")}
    for split in sorted(others):
        shared = sorted(report & set(kitti.frame_ids(split)))
        if shared:
            raise ConfigError(
                f"{args.data}: report split {args.report_split!r} shares {len(shared)} frame(s) "
                f"with {split!r} (e.g. {shared[:3]}); a KITTI test.txt lists testing/ frames, "
                "which have no labels. Write a labelled held-out split (see docs/ablation.md)")


def _scores(result: ValidationResult, split: str) -> SplitScores:
    return SplitScores(split=split, ap3d_r40=result.ap3d_r40, apbev_r40=result.apbev_r40,
                       num_frames=result.num_frames)


def _scores_from_metrics(metrics: dict[str, float], split: str, num_frames: int
                         ) -> SplitScores | None:
    """The validation metrics a checkpoint stored, or None when it has none."""
    try:
        triples = {m: tuple(float(metrics[key.format(level)]) for level in
                            ("easy", "moderate", "hard")) for m, key in _VAL_KEYS.items()}
    except KeyError:
        return None
    return SplitScores(split=split, ap3d_r40=triples["ap3d_r40"],  # type: ignore[arg-type]
                       apbev_r40=triples["apbev_r40"],  # type: ignore[arg-type]
                       num_frames=num_frames)


def chosen_checkpoint(run: RunDir) -> Path:
    """The checkpoint selection picked: ``best`` when validation chose one, else ``last``."""
    return run.best if run.best.exists() else run.last


def _teachers(row: AblationRow, seed_dir: Path) -> tuple[Path | None, Path | None]:
    """The teacher and TA checkpoints of this seed that the row's preset distils from."""
    if row.stage != "student" or row.distill is None:
        return None, None
    preset = distill_preset(row.distill)  # type: ignore[arg-type]
    teacher = chosen_checkpoint(RunDir(seed_dir / "teacher")) if preset.needs_teacher else None
    assistant = chosen_checkpoint(RunDir(seed_dir / "ta")) if preset.needs_assistant else None
    return teacher, assistant


def _stored_result(path: Path, args: argparse.Namespace) -> RowResult | None:
    """A row evaluated before on the same splits, else None (re-evaluated; training kept)."""
    if not path.is_file():
        return None
    try:
        stored = read_row_result(path)
    except ConfigError as err:
        LOG.warning("%s; re-evaluating the row", err)
        return None
    if (stored.report.split, stored.selection.split) != (args.report_split, args.val_split):
        LOG.warning("%s: scored on %r (chosen on %r), now asked for %r (%r); re-evaluating", path,
                    stored.report.split, stored.selection.split, args.report_split,
                    args.val_split)
        return None
    return stored


def train_and_evaluate(row: AblationRow, seed: int, args: argparse.Namespace, seed_dir: Path,
                       device: torch.device) -> RowResult:
    """Train (or continue) the row, choose its checkpoint on val, score it on the report split."""
    run = RunDir(seed_dir / row.key)
    result_file = run.root / RESULT_FILE
    stored = _stored_result(result_file, args)
    if stored is not None:
        LOG.info("seed %d: %s already evaluated (%s), kept", seed, row.title, result_file)
        return stored
    teacher, assistant = _teachers(row, seed_dir)
    resumed = run.last.exists()
    request = StageRequest(
        stage=row.stage, model_config=args.model_config,
        train_config=train_config_path(args, row.stage), data=args.data, out=run.root,
        unlabeled_drives=tuple(args.unlabeled_drives) if row.stage == "student" else (),
        teacher=teacher, assistant=assistant, distill=row.distill,
        resume=resumed, seed=seed, max_steps=args.max_steps, device=args.device,
        cache_dir=args.cache_dir, train_overrides=train_overrides(args),
        command=tuple(args.command))
    LOG.info("seed %d: %s -> %s", seed, row.title, run.root)
    started_s = time.perf_counter()
    run_stage(request)
    train_s = time.perf_counter() - started_s
    checkpoint = chosen_checkpoint(run)
    meta = load_checkpoint_meta(checkpoint)
    model_cfg = load_model_config(args.model_config)
    val_frames = len(KittiObjectDataset(args.data, "training").frame_ids(args.val_split))
    selection = _scores_from_metrics(meta.metrics, args.val_split, min(
        val_frames, args.val_max_frames or val_frames))
    if selection is None:  # no validation during training: score the chosen one on val now
        selection = _scores(evaluate_checkpoint(checkpoint, row.stage, model_cfg, args.data,
                                                args.val_split, device,
                                                max_frames=args.val_max_frames), args.val_split)
    report = evaluate_checkpoint(checkpoint, row.stage, model_cfg, args.data, args.report_split,
                                 device, max_frames=args.report_max_frames)
    result = RowResult(report=_scores(report, args.report_split), selection=selection,
                       checkpoint=checkpoint.name, step=meta.step,
                       machine=machine_description(device), train_s=train_s,
                       eval_s=time.perf_counter() - started_s - train_s, resumed=resumed)
    write_row_result(result_file, result)
    return result


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of monotakd-ablation."""
    parser = argparse.ArgumentParser(prog="monotakd-ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="KITTI object root")
    parser.add_argument("--out", type=Path, required=True, help="ablation folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                        help=f"rows to run (default all: {' '.join(ROW_KEYS)}); the teacher "
                             "and TA that the students' presets need are added")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="model YAML (default: config/models/small.yaml)")
    parser.add_argument("--train-config-dir", type=Path, default=None,
                        help="folder of the train YAMLs (default: config/train)")
    parser.add_argument("--train-config-prefix", default="",
                        help="YAML names are <prefix>teacher.yaml etc.; 'kitti_r50_' for the "
                             "paper configuration")
    parser.add_argument("--unlabeled-drives", type=Path, nargs="+", default=[])
    parser.add_argument("--val-split", default="val",
                        help="selection split: validation during training and the choice of "
                             "the checkpoint (default val)")
    parser.add_argument("--val-max-frames", type=int, default=0)
    parser.add_argument("--val-interval", type=int, default=None,
                        help="validate every N steps during training (default: the train "
                             "configs'; 0 with --budget-min): the curves to pick a budget from")
    parser.add_argument("--report-split", default="test",
                        help="split every reported number is computed on (default test)")
    parser.add_argument("--report-max-frames", type=int, default=0)
    parser.add_argument("--allow-report-on-selection-split", action="store_true",
                        help="permit --report-split == --val-split (old data without a held-out "
                             "split; the report says so)")
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


def _workload(rows: Sequence[AblationRow], args: argparse.Namespace, train_frames: int,
              val_frames: int) -> Workload:
    """Rows per seed and the frames evaluated per row (selection, if needed, and report)."""
    spec_free = KittiObjectDataset(args.data, "training")
    report_frames = len(spec_free.frame_ids(args.report_split))
    if args.report_max_frames:
        report_frames = min(report_frames, args.report_max_frames)
    students = [r for r in rows if r.stage == "student"]
    return Workload(teacher_rows=sum(r.key == "teacher" for r in rows),
                    ta_rows=sum(r.key == "ta" for r in rows), student_rows=len(students),
                    distilled_rows=sum(r.distill != "none" for r in students),
                    train_frames=train_frames, val_frames=val_frames + report_frames,
                    frozen_cache=args.frozen_cache != "off")


def plan_to_budget(args: argparse.Namespace, rows: Sequence[AblationRow],
                   device: torch.device) -> Plan:
    """Measure step times on the prepared split and fit steps and seeds to the budget."""
    model_cfg = load_model_config(args.model_config)
    cfg = load_train_config(train_config_path(args, "student"),
                            **{k: v for k, v in train_overrides(args).items()
                               if k in ("batch_size", "threads")})
    calibration = calibrate(args.data, model_cfg, cfg, args.cache_dir, device, args.resident,
                            args.val_split, args.val_max_frames)
    times = calibration.times
    if args.val_interval:  # periodic validation: its cost spread over the steps between
        per_step_s = calibration.val_frames * times.predict_frame_s / args.val_interval
        times = dataclasses.replace(times, teacher_step_s=times.teacher_step_s + per_step_s,
                                    ta_step_s=times.ta_step_s + per_step_s,
                                    student_step_s=times.student_step_s + per_step_s)
    work = _workload(rows, args, calibration.train_frames, calibration.val_frames)
    plan = fit_plan(times, work, args.budget_min * 60, args.seeds, args.min_steps,
                    args.max_steps, spent_s=time.monotonic() - args.started_s)
    LOG.info("%s", plan.describe(times, work))
    return plan


def run_ablation(args: argparse.Namespace, command: Sequence[str]) -> dict[str, Path]:
    """Train and evaluate every row for every seed; returns the written report paths."""
    args.command = list(command)
    args.started_s = getattr(args, "started_s", time.monotonic())
    args.model_config = args.model_config or default_config_dir() / "models" / "small.yaml"
    args.cache_dir = args.cache_dir or (args.out / "cache" if args.data_cache
                                        else default_cache_dir())
    rows = selected_rows(args.rows)
    for name in ("teacher", "ta", "student"):
        if not train_config_path(args, name).is_file():
            raise ConfigError(f"train config {train_config_path(args, name)} does not exist "
                              "(see --train-config-dir/--train-config-prefix)")
    check_splits(args)
    device = resolve_device(args.device or "auto")
    args.threads = choose_threads(args.threads, device)
    LOG.info("device %s, %d torch thread(s) (%d CPUs), data %s, frozen targets %s; rows %s; "
             "chosen on %r, reported on %r", device, args.threads, os.cpu_count() or 0,
             "prepared" if args.data_cache else "live",
             args.frozen_cache if args.frozen_cache != "off" else "live",
             [r.key for r in rows], args.val_split, args.report_split)
    if args.merge:
        return write_reports(args, collected_results(args.out, ROW_KEYS))
    if args.budget_min is not None:
        if not args.data_cache:
            raise ConfigError("--budget-min measures on the prepared split; drop "
                              "--no-data-cache")
        plan = plan_to_budget(args, rows, device)
        args.max_steps, args.seeds = plan.steps, list(plan.seeds)
    results: Results = {}
    for seed in args.seeds:
        for row in rows:
            result = train_and_evaluate(row, seed, args, args.out / f"seed_{seed}", device)
            results.setdefault(row.key, {})[seed] = result
            LOG.info("seed %d %s: %r AP3D R40 %s (step %d, %s)", seed, row.title,
                     args.report_split, result.report.ap3d_r40, result.step, result.checkpoint)
    if args.no_report:
        return {}
    return write_reports(args, results)


def write_reports(args: argparse.Namespace, results: Results) -> dict[str, Path]:
    """``ablation.md``/``.json``, ``claim.png`` and the validation curves in ``args.out``."""
    report_split, selection_split = check_one_protocol(results)
    steps = ("as recorded per row" if args.merge else "the train configs'"
             if args.max_steps is None else str(args.max_steps))
    notes = (f"Data: {args.data}; model config {args.model_config}; train configs "
             f"{train_config_path(args, '<stage>')}; steps per stage: {steps}")
    if report_split == selection_split:
        notes += (f". **Reported on the selection split {report_split!r}: biased upwards, no "
                  "held-out split**")
    written = write_report_files(args.out, results, shlex.join(args.command), notes)
    written["claim"] = write_claim_figure(args.out, results, report_split)
    for path in write_validation_curves(args.out, selection_split):
        written[path.stem] = path
    return written


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
        LOG.info("wrote %s", ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

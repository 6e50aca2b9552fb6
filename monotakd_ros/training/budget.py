"""Wall-clock budgets: measure the step times here, then fit steps and seeds to the budget.

A short calibration runs a few real optimiser steps of each stage (random weights, prepared
batches, loss, backward, clip and AdamW as in the trainer), the frozen teacher + TA forward and
the prediction per frame. The plan then picks the largest number of steps per stage (equal for
all stages) whose projected time, with every fixed cost counted, stays within the budget minus a
safety margin; when even ``min_steps`` does not fit, seeds are dropped from the end, and when one
seed does not fit either, the error names the budget that would.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from monotakd_ros.data.prepared.batches import FrameAugmentation, PreparedFrames, resident_bytes
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split
from monotakd_ros.distill.config import DetectionLossWeights, distill_preset
from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.models.build import build_assistant, build_student, build_teacher
from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config
from monotakd_ros.training.data_loading import (
    build_val_dataset,
    choose_threads,
    fits_on_device,
    input_spec_for,
)
from monotakd_ros.training.distributed import resolve_device
from monotakd_ros.training.stages import FrozenModels, Stage, StudentLoss, build_stage

LOG = logging.getLogger(__name__)

SAFETY = 0.85  # plan for 85 % of the budget: timing noise, checkpoints, process start-up
ROW_OVERHEAD_S = 4.0  # per trained row: model build, checkpoint writes, evaluation set-up


@dataclass(frozen=True)
class StepTimes:
    """Measured seconds: per optimiser step of each stage, per frame for the rest."""

    teacher_step_s: float
    ta_step_s: float
    student_step_s: float  # frozen targets read from the cache (not recomputed)
    frozen_frame_s: float  # teacher + TA forward of one frame (cache build or live targets)
    predict_frame_s: float  # evaluation: prediction of one frame (loading included)
    batch_size: int
    threads: int
    device: str


@dataclass(frozen=True)
class Workload:
    """What one run trains: rows per seed and the data it passes over."""

    teacher_rows: int  # rows per seed that train the teacher
    ta_rows: int
    student_rows: int
    distilled_rows: int  # student rows that read teacher/TA targets
    train_frames: int
    val_frames: int
    frozen_cache: bool  # targets computed once (2 flip states) instead of every step
    extra_frames: int = 0  # per seed, e.g. distillation on unlabelled frames (live targets)


@dataclass(frozen=True)
class Plan:
    """Steps per stage and seeds chosen to fit the budget, with the projection."""

    steps: int
    seeds: tuple[int, ...]
    projected_s: float
    budget_s: float
    per_seed_s: float
    fixed_per_seed_s: float
    step_cost_s: float  # seconds per step of every stage of one seed together

    def describe(self, times: StepTimes, work: Workload) -> str:
        """The plan as printed before the run starts."""
        samples = self.steps * times.batch_size
        return "\n".join([
            f"plan: {self.steps} steps per stage (batch {times.batch_size}: {samples} samples, "
            f"{samples / max(work.train_frames, 1):.1f} epochs of {work.train_frames} frames), "
            f"seeds {list(self.seeds)}",
            f"  measured on {times.device} with {times.threads} torch thread(s): teacher "
            f"{times.teacher_step_s:.3f} s/step, TA {times.ta_step_s:.3f}, student "
            f"{times.student_step_s:.3f}; frozen teacher+TA {times.frozen_frame_s:.3f} s/frame, "
            f"prediction {times.predict_frame_s:.3f} s/frame",
            f"  per seed: {work.teacher_rows} teacher, {work.ta_rows} TA, {work.student_rows} "
            f"student rows = {self.step_cost_s:.2f} s per step + {self.fixed_per_seed_s:.0f} s "
            f"fixed (frozen targets, evaluation of {work.val_frames} val frames per row, "
            f"set-up) = {self.per_seed_s / 60:.1f} min",
            f"  projected {self.projected_s / 60:.1f} min of a {self.budget_s / 60:.1f} min "
            f"budget ({SAFETY:.0%} planned, the rest is margin)"])


def fixed_seconds_per_seed(times: StepTimes, work: Workload) -> float:
    """Seconds per seed that do not scale with the steps."""
    rows = work.teacher_rows + work.ta_rows + work.student_rows
    frozen = 2 * work.train_frames * times.frozen_frame_s if (
        work.frozen_cache and work.distilled_rows) else 0.0
    extra = work.extra_frames * (times.student_step_s / times.batch_size + times.frozen_frame_s)
    return frozen + extra + rows * (work.val_frames * times.predict_frame_s + ROW_OVERHEAD_S)


def step_seconds_per_seed(times: StepTimes, work: Workload) -> float:
    """Seconds per optimiser step of every stage of one seed together."""
    live_targets = 0.0 if work.frozen_cache else times.frozen_frame_s * times.batch_size
    return (work.teacher_rows * times.teacher_step_s + work.ta_rows * times.ta_step_s
            + work.student_rows * times.student_step_s + work.distilled_rows * live_targets)


def fit_plan(times: StepTimes, work: Workload, budget_s: float, seeds: Sequence[int],
             min_steps: int, max_steps: int | None, spent_s: float = 0.0) -> Plan:
    """The most steps (up to ``max_steps``) that fit; fewer seeds if ``min_steps`` does not."""
    fixed, per_step = fixed_seconds_per_seed(times, work), step_seconds_per_seed(times, work)
    available = budget_s * SAFETY - spent_s
    if max_steps is not None:
        min_steps = min(min_steps, max_steps)  # a cap below the floor is the run asked for
    for count in range(len(seeds), 0, -1):
        steps = math.floor((available / count - fixed) / per_step) if per_step > 0 else 0
        if max_steps is not None:
            steps = min(steps, max_steps)
        if steps >= min_steps:
            per_seed = fixed + steps * per_step
            if count < len(seeds):
                LOG.warning("budget: %d of %d seeds fit with >= %d steps per stage", count,
                            len(seeds), min_steps)
            return Plan(steps=steps, seeds=tuple(seeds[:count]),
                        projected_s=spent_s + count * per_seed, budget_s=budget_s,
                        per_seed_s=per_seed, fixed_per_seed_s=fixed, step_cost_s=per_step)
    needed = (spent_s + fixed + min_steps * per_step) / SAFETY
    raise ConfigError(f"--budget-min: {budget_s / 60:.1f} min do not fit one seed of "
                      f"{min_steps} steps per stage; that needs about {needed / 60:.1f} min "
                      "(or lower --min-steps)")


def _median_seconds(run: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    run()  # warm-up: allocator, lazy kernels
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure_step_times(model_cfg: ModelConfig, frames: PreparedFrames, cfg: TrainConfig,
                       load_val_frame: Callable[[], object] | None = None,
                       repeats: int = 3) -> StepTimes:
    """Seconds per step of each stage and per frame of frozen forward and prediction."""
    device = frames.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    rows = [i % len(frames) for i in range(cfg.batch_size)]
    batch = frames.batch(rows, FrameAugmentation.none(len(rows)))
    spec, weights = frames.spec, DetectionLossWeights()
    seconds = {}
    for name in ("teacher", "ta", "student"):
        frozen = None
        if name == "student":  # targets as the cache delivers them: computed once, reused
            student = build_student(model_cfg)
            stage = Stage(name, model_cfg, spec, student,
                          StudentLoss(student, model_cfg, distill_preset("takd"))).to(device)
            frozen = FrozenModels(build_teacher(model_cfg), build_assistant(model_cfg)).to(
                device)(batch)
        else:
            stage = build_stage(name, model_cfg, spec, weights).to(device)
        optimizer = torch.optim.AdamW(stage.model.parameters(), lr=cfg.lr)

        def step(stage: Stage = stage, frozen: object = frozen,
                 optimizer: torch.optim.Optimizer = optimizer) -> None:
            stage.loss_module(batch, frozen)["total"].backward()  # as the trainer's step
            torch.nn.utils.clip_grad_norm_(stage.model.parameters(), cfg.grad_clip or 1e9)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        seconds[name] = _median_seconds(step, repeats, sync)
        if name == "student":
            stage.model.eval()
            seconds["predict"] = _median_seconds(lambda s=stage: s.predict(batch), repeats,
                                                 sync) / len(rows)
    if load_val_frame is not None:  # validation reads its frames live
        seconds["predict"] += _median_seconds(load_val_frame, repeats, lambda: None)
    live = FrozenModels(build_teacher(model_cfg), build_assistant(model_cfg)).to(device)
    seconds["frozen"] = _median_seconds(lambda: live(batch), repeats, sync) / len(rows)
    times = StepTimes(teacher_step_s=seconds["teacher"], ta_step_s=seconds["ta"],
                      student_step_s=seconds["student"], frozen_frame_s=seconds["frozen"],
                      predict_frame_s=seconds["predict"], batch_size=cfg.batch_size,
                      threads=torch.get_num_threads(), device=str(device))
    LOG.info("measured step times: %s", times)
    return times


@dataclass(frozen=True)
class Calibration:
    """Step times measured on a prepared split, with the split sizes they apply to."""

    times: StepTimes
    train_frames: int
    val_frames: int


def calibrate(data_root: Path, model_cfg: ModelConfig, cfg: TrainConfig, cache_dir: Path,
              device: torch.device, resident_mode: str, val_split: str,
              val_max_frames: int = 0) -> Calibration:
    """Prepare the training split (cached for the runs) and measure the step times on it."""
    spec = input_spec_for(model_cfg)
    store = prepared_split(SplitSource(data_root, cfg.train_split, spec), cache_dir,
                           workers=cfg.workers)
    resident = fits_on_device(resident_bytes(store), device, resident_mode,
                              "the prepared split")
    frames = PreparedFrames(store, spec, device, resident)
    val = build_val_dataset(data_root, val_split, spec)
    times = measure_step_times(model_cfg, frames, cfg, load_val_frame=lambda: val[0])
    val_frames = min(len(val), val_max_frames) if val_max_frames else len(val)
    return Calibration(times=times, train_frames=len(frames), val_frames=val_frames)


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m monotakd_ros.training.budget`` (used by experiment scripts)."""
    parser = argparse.ArgumentParser(description="Measure step times and print the steps per "
                                     "stage that fit a wall-clock budget; last line: STEPS=N "
                                     "SEEDS='...' for shell scripts.")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model-config", type=Path, required=True)
    parser.add_argument("--train-config", type=Path, required=True,
                        help="the student's train YAML (batch size, split)")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--budget-min", type=float, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rows", type=int, nargs=4, default=[1, 1, 1, 1],
                        metavar=("TEACHER", "TA", "STUDENT", "DISTILLED"),
                        help="trained rows per seed: teacher, TA, student, distilled students")
    parser.add_argument("--extra-frames", type=int, default=0,
                        help="frames per seed distilled with live teacher/TA targets")
    parser.add_argument("--spent-s", type=float, default=0.0, help="budget already used")
    parser.add_argument("--min-steps", type=int, default=50)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--frozen-cache", choices=("off", "fp16", "fp32"), default="fp16")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the plan; exit status 2 (with the reason) when nothing fits."""
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    try:
        device = resolve_device(args.device)
        threads = choose_threads(args.threads, device)
        LOG.info("device %s, %d torch thread(s)", device, threads)
        cfg = load_train_config(args.train_config, threads=threads)
        calibration = calibrate(args.data, load_model_config(args.model_config), cfg,
                                args.cache_dir, device, "auto", args.val_split)
        teacher, ta, student, distilled = args.rows
        work = Workload(teacher_rows=teacher, ta_rows=ta, student_rows=student,
                        distilled_rows=distilled, train_frames=calibration.train_frames,
                        val_frames=calibration.val_frames,
                        frozen_cache=args.frozen_cache != "off",
                        extra_frames=args.extra_frames)
        plan = fit_plan(calibration.times, work, args.budget_min * 60, args.seeds,
                        args.min_steps, args.max_steps,
                        spent_s=args.spent_s + time.monotonic() - started)
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    print(plan.describe(calibration.times, work))
    print(f"STEPS={plan.steps} SEEDS='{' '.join(str(s) for s in plan.seeds)}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())

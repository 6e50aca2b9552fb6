"""Wall-clock budgets: measure the step times here, then fit steps and seeds to the budget.

A short calibration runs a few real optimiser steps of each stage (random weights, prepared
batches, loss, backward, clip and AdamW as in the trainer), the frozen teacher + TA forward and
the prediction per frame. The plan then picks the largest number of steps per stage (equal for
all stages) whose projected time, with every fixed cost counted, stays within the budget minus a
safety margin; when even ``min_steps`` does not fit, seeds are dropped from the end, and when one
seed does not fit either, the error names the budget that would.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from monotakd_ros.data.prepared.batches import FrameAugmentation, PreparedFrames
from monotakd_ros.distill.config import DetectionLossWeights, distill_preset
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.build import build_assistant, build_student, build_teacher
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.training.config import TrainConfig
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
    return frozen + rows * (work.val_frames * times.predict_frame_s + ROW_OVERHEAD_S)


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

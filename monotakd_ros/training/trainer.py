"""The stage training loop: validate or checkpoint, then one ``TrainingIteration`` per step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from monotakd_ros.errors import ConfigError
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import TrainLoader
from monotakd_ros.training.distributed import (
    DistContext,
    barrier,
    broadcast_from_main,
    mean_across_ranks,
)
from monotakd_ros.training.logging_utils import CsvLog, plot_loss_curves
from monotakd_ros.training.loop import TrainingIteration
from monotakd_ros.training.run_state import (
    Progress,
    RunDir,
    restore_training,
    save_training_checkpoint,
)
from monotakd_ros.training.stages import Stage
from monotakd_ros.training.step import OptimizerStep
from monotakd_ros.training.validation import ValidationResult

LOG = logging.getLogger(__name__)

Validator = Callable[[Stage], ValidationResult]


@dataclass(frozen=True)
class TrainSummary:
    """How a run ended."""

    step: int
    total_steps: int
    final_losses: dict[str, float]
    last_validation: ValidationResult | None
    best_metric: float | None
    best_step: int | None


def total_steps_of(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimiser steps of the whole run: ``max_steps`` if set, else ``epochs`` full epochs."""
    return cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch


def _wrap_for_ddp(stage: Stage, cfg: TrainConfig, ctx: DistContext) -> nn.Module:
    if not ctx.is_distributed:
        return stage.loss_module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(stage.loss_module, device_ids=device_ids,
                                   find_unused_parameters=cfg.find_unused_parameters)


class _Checkpointer:
    """Validation and checkpoints at a step boundary; every rank calls, rank 0 writes."""

    def __init__(self, stage: Stage, stepper: OptimizerStep, progress: Progress,
                 steps_per_epoch: int, total_steps: int, cfg: TrainConfig, run: RunDir,
                 ctx: DistContext, validator: Validator | None) -> None:
        self.stage, self.stepper = stage, stepper
        self.progress, self.cfg, self.run, self.ctx = progress, cfg, run, ctx
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.validator = validator
        self.val_log = CsvLog(run.val_csv)
        self.last_validation: ValidationResult | None = None

    def save(self, path: Path, metrics: dict[str, float] | None = None) -> None:
        """Checkpoint of the state after ``progress.step`` steps."""
        save_training_checkpoint(path, self.stage, self.stepper, self.progress,
                                 self.steps_per_epoch, self.total_steps, self.cfg, self.ctx,
                                 metrics)

    def validate(self) -> dict[str, float] | None:
        """Evaluate on rank 0, log, and save ``best`` when Car AP3D Moderate improved."""
        if self.validator is None:
            return None
        improved, metrics = False, None
        if self.ctx.is_main:
            self.stage.model.eval()
            result = self.validator(self.stage)
            self.stage.model.train()
            self.last_validation, metrics = result, result.metrics()
            self.val_log.append(self.progress.step, metrics)
            plot_loss_curves(self.run.val_csv, self.run.val_png)
            LOG.info("step %d validation (%d frames): Car AP3D R40 %.2f / %.2f / %.2f",
                     self.progress.step, result.num_frames, *result.ap3d_r40)
            best = self.progress.best_metric
            improved = best is None or result.ap3d_moderate > best
            if improved:
                self.progress.best_metric = result.ap3d_moderate
                self.progress.best_step = self.progress.step
        improved, metrics = broadcast_from_main((improved, metrics), self.ctx)
        if improved:
            self.save(self.run.best, metrics)
        return metrics

    def at_step(self, start_step: int) -> None:
        """Periodic validation and checkpoints of the current step (none at the start step)."""
        step = self.progress.step
        if step == start_step:
            return  # the state there is either fresh or exactly the resumed checkpoint
        metrics = None
        if self.cfg.val_interval and step % self.cfg.val_interval == 0:
            metrics = self.validate()
        if self.cfg.ckpt_interval and step % self.cfg.ckpt_interval == 0:
            self.save(self.run.step_checkpoint(step), metrics)
            self.save(self.run.last, metrics)
            if self.ctx.is_main:
                plot_loss_curves(self.run.train_csv, self.run.loss_png)

    def at_end(self) -> None:
        """Final validation and the ``last`` checkpoint (plus the periodic one if due)."""
        metrics = self.validate() if self.cfg.val_interval else None
        step = self.progress.step
        if self.cfg.ckpt_interval and step % self.cfg.ckpt_interval == 0:
            self.save(self.run.step_checkpoint(step), metrics)
        self.save(self.run.last, metrics)


def train(stage: Stage, data: TrainLoader, cfg: TrainConfig, run: RunDir, ctx: DistContext,
          validator: Validator | None = None, resume: bool = False,
          stop_at_step: int | None = None) -> TrainSummary:
    """Train ``stage.model``; ``stop_at_step`` ends early with a ``last`` checkpoint there."""
    stage.to(ctx.device)
    if cfg.sync_batchnorm and ctx.is_distributed:
        if ctx.device.type != "cuda":
            raise ConfigError(f"train.sync_batchnorm: SyncBatchNorm needs CUDA, running on "
                              f"{ctx.device}")
        nn.SyncBatchNorm.convert_sync_batchnorm(stage.loss_module)  # replaces BN in place
    stage.model.train()
    stepper = OptimizerStep(stage.model, cfg, ctx.device)
    steps_per_epoch = data.batches_per_epoch // cfg.grad_accum
    total_steps = total_steps_of(cfg, steps_per_epoch)
    progress = Progress()
    if resume:
        progress = restore_training(run, stage, stepper, steps_per_epoch, total_steps, cfg, ctx)
    model = _wrap_for_ddp(stage, cfg, ctx)
    train_log = CsvLog(run.train_csv)
    if ctx.is_main:  # rows written after the resumed checkpoint belong to lost work
        train_log.truncate_after(progress.step + 1)
        CsvLog(run.val_csv).truncate_after(progress.step + 1)
    checkpoints = _Checkpointer(stage, stepper, progress, steps_per_epoch, total_steps, cfg,
                                run, ctx, validator)
    start_step = progress.step
    epoch, step_in_epoch = divmod(start_step, steps_per_epoch)
    batches = data.batches(epoch, step_in_epoch * cfg.grad_accum,
                           steps_per_epoch * cfg.grad_accum)
    bar = _progress_bar(start_step, total_steps, ctx)
    iteration = TrainingIteration(stage, stepper, cfg, ctx.device,
                                  train_log if ctx.is_main else None,
                                  loss_module=model if ctx.is_distributed else None)
    losses: dict[str, float] = {}
    stopped_early = False
    while progress.step < total_steps:
        # validate and checkpoint the state reached after `step` steps
        checkpoints.at_step(start_step)
        if stop_at_step is not None and progress.step >= stop_at_step:
            checkpoints.save(run.last)
            stopped_early = True
            break
        # accumulate over grad_accum micro-batches (DDP syncs on the last), clip, step; a
        # non-finite step is skipped but still consumes its batches, so resume stays exact
        result = iteration.run(progress.step, total_steps, lambda: next(batches),
                               cfg.grad_accum,
                               no_sync=model.no_sync if ctx.is_distributed else None,
                               reduce=lambda sums: mean_across_ranks(sums, ctx))
        losses = result.losses
        progress.step += 1
        iteration.log(progress.step, result)  # averaged over ranks; rank 0 writes
        if ctx.is_main:
            bar.update(1)
            if cfg.log_interval and progress.step % cfg.log_interval == 0:
                bar.set_postfix(loss=f"{losses['total']:.4f}", lr=f"{result.lr:.2e}")
                LOG.info("step %d/%d loss %.4f lr %.3e", progress.step, total_steps,
                         losses["total"], result.lr)
    if not stopped_early:
        checkpoints.at_end()
    bar.close()
    if ctx.is_main:
        plot_loss_curves(run.train_csv, run.loss_png)
    barrier(ctx)
    return TrainSummary(step=progress.step, total_steps=total_steps, final_losses=losses,
                        last_validation=checkpoints.last_validation,
                        best_metric=progress.best_metric, best_step=progress.best_step)


def _progress_bar(start: int, total: int, ctx: DistContext) -> tqdm:
    """Step progress on rank 0 (a disabled bar elsewhere)."""
    return tqdm(total=total, initial=start, disable=not ctx.is_main, dynamic_ncols=True,
                desc="train")

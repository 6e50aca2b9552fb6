"""The body of the one training loop, shared by the stage trainer and the distiller's engine.

One iteration sets the learning rate from the schedule, computes the frozen models' targets and
the stage's loss on the batches ``next_batch`` hands out, takes one ``OptimizerStep`` (AMP,
accumulation, clipping, the non-finite policy) and writes one row of the training CSV. The two
callers differ only in their data source: the trainer pulls batches from its loader, the engine
hands over the frames it queued from a bag or live topics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.logging_utils import CsvLog
from monotakd_ros.training.schedule import learning_rate_at
from monotakd_ros.training.stages import Stage
from monotakd_ros.training.step import OptimizerStep, Reduce


@dataclass(frozen=True)
class IterationResult:
    """What one iteration did; ``applied`` False means the step was skipped as non-finite."""

    lr: float
    losses: dict[str, float]
    applied: bool
    seconds: float


def scheduled_lr(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """LR of the step after ``step`` done ones; past ``total_steps`` it stays at the last value."""
    if total_steps <= 0:
        return cfg.lr
    return learning_rate_at(min(step, total_steps - 1), total_steps, cfg)


class TrainingIteration:
    """LR, frozen targets, loss, optimiser step and CSV row of one training step."""

    def __init__(self, stage: Stage, stepper: OptimizerStep, cfg: TrainConfig,
                 device: torch.device, train_log: CsvLog | None,
                 loss_module: nn.Module | None = None) -> None:
        self.stage, self.stepper, self.cfg, self.device = stage, stepper, cfg, device
        self.train_log = train_log  # None: this process writes no rows (DDP ranks > 0)
        self.wrapped_loss = loss_module  # e.g. the DDP wrapper; None: the stage's own, each call

    def run(self, step: int, total_steps: int, next_batch: Callable[[], FrameBatch],
            micro_batches: int = 1,
            no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
            reduce: Reduce | None = None) -> IterationResult:
        """Step ``step + 1``: ``micro_batches`` calls of ``next_batch``, then step or skip."""
        started = time.perf_counter()
        lr = scheduled_lr(step, total_steps, self.cfg)
        self.stepper.set_learning_rate(lr)
        if self.cfg.freeze_bn:  # after any model.train() (validation switches modes back)
            for layer in self.stepper.batch_norm_layers:
                layer.eval()  # normalise with the running statistics and keep them

        def forward(micro: int) -> dict[str, torch.Tensor]:
            batch = next_batch().to(self.device)
            frozen = self.stage.frozen_outputs(batch)  # no_grad inside
            loss_module = (self.wrapped_loss if self.wrapped_loss is not None
                           else self.stage.loss_module)
            return loss_module(batch, frozen)

        outcome = self.stepper.run(forward, micro_batches, no_sync=no_sync, reduce=reduce,
                                   step=step + 1)
        return IterationResult(lr=lr, losses=outcome.losses, applied=outcome.applied,
                               seconds=time.perf_counter() - started)

    def log(self, row_step: int, result: IterationResult,
            extra: Mapping[str, float] | None = None) -> None:
        """One training-CSV row: LR, loss terms, a skip flag when skipped, ``extra``, time."""
        if self.train_log is None:
            return
        skipped = {} if result.applied else {"skipped_nonfinite": 1.0}
        self.train_log.append(row_step, {"lr": result.lr, **result.losses, **skipped,
                                         **(extra or {}), "step_time_s": result.seconds})

"""A run directory and the state that makes ``--resume`` continue exactly where a run stopped.

A checkpoint at step ``s`` holds the state after ``s`` optimiser steps: weights, optimizer,
AMP scaler, every rank's RNG snapshot, and where in which epoch the next batch comes from. The
LR schedule is a pure function of the step, so it needs no state of its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import CheckpointError
from monotakd_ros.model_io.checkpoint import (
    TrainState,
    load_checkpoint_meta,
    load_model_weights,
    load_optimizer_state,
    load_train_state,
    save_checkpoint,
)
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.distributed import DistContext, gather_objects
from monotakd_ros.training.rng_state import capture_rng_state, restore_rng_state
from monotakd_ros.training.stages import Stage, config_differences

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir:
    """Where a run writes: checkpoints, CSV logs, loss curves and the configs it used."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        """Folder of the step, ``last`` and ``best`` checkpoints."""
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        """The newest checkpoint: what ``--resume`` continues from."""
        return self.checkpoints / "last"

    @property
    def best(self) -> Path:
        """The checkpoint with the best validation Car AP3D R40 Moderate."""
        return self.checkpoints / "best"

    def step_checkpoint(self, step: int) -> Path:
        """The periodic checkpoint of ``step``."""
        return self.checkpoints / f"step_{step:07d}"

    @property
    def train_csv(self) -> Path:
        """Loss terms and LR of every optimiser step."""
        return self.root / "train_log.csv"

    @property
    def val_csv(self) -> Path:
        """Validation metrics at each validation step."""
        return self.root / "val_log.csv"

    @property
    def loss_png(self) -> Path:
        """Loss curves drawn from ``train_csv``."""
        return self.root / "loss_curves.png"

    @property
    def val_png(self) -> Path:
        """Validation curves drawn from ``val_csv``."""
        return self.root / "val_curves.png"


@dataclass
class Progress:
    """Where the loop stands: optimiser steps done and the best validation so far."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None


def write_run_configs(run: RunDir, stage: Stage, cfg: TrainConfig, command: list[str]) -> None:
    """Record the resolved model and train configs and the command line in the run folder."""
    run.root.mkdir(parents=True, exist_ok=True)
    record = {"stage": stage.name, "command": command,
              "model_config": dataclass_to_dict(stage.model_cfg),
              "train_config": dataclass_to_dict(cfg)}
    (run.root / "run_config.json").write_text(json.dumps(record, indent=2) + "\n")


def save_training_checkpoint(path: Path, stage: Stage, optimizer: torch.optim.Optimizer,
                             scaler: torch.amp.GradScaler, progress: Progress,
                             steps_per_epoch: int, total_steps: int, cfg: TrainConfig,
                             ctx: DistContext, metrics: dict[str, float] | None = None) -> None:
    """Checkpoint after ``progress.step`` steps; every rank calls it, rank 0 writes."""
    rng_per_rank = gather_objects(capture_rng_state(), ctx)
    if not ctx.is_main:
        return
    epoch, step_in_epoch = divmod(progress.step, steps_per_epoch)
    state = TrainState(step=progress.step, epoch=epoch, rng=rng_per_rank[0], extra={
        "rng_per_rank": rng_per_rank,
        "world_size": ctx.world_size,
        "batch_in_epoch": step_in_epoch * cfg.grad_accum,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "scaler": scaler.state_dict(),
        "best_metric": progress.best_metric,
        "best_step": progress.best_step,
        "train_config": dataclass_to_dict(cfg),
    })
    meta = stage.checkpoint_meta(progress.step, epoch, metrics)
    save_checkpoint(path, stage.model, meta, optimizer, state)


def restore_training(path: Path, stage: Stage, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler, steps_per_epoch: int, total_steps: int,
                     cfg: TrainConfig, ctx: DistContext) -> Progress:
    """Load everything ``save_training_checkpoint`` wrote; refuse a run that cannot match."""
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint to resume from (train without --resume "
                              "first, or point --out at the run folder)")
    meta = load_checkpoint_meta(path)
    if meta.stage != stage.name:
        raise CheckpointError(f"{path}: is a {meta.stage!r} run, cannot resume it as "
                              f"{stage.name!r}")
    differences = config_differences(meta.model_config, dataclass_to_dict(stage.model_cfg))
    if differences:
        raise CheckpointError(f"{path}: model config changed since the run started: "
                              + "; ".join(differences[:5]))
    state = load_train_state(path)
    _check_same_schedule(path, state, steps_per_epoch, total_steps, cfg)
    load_model_weights(path, stage.model)
    load_optimizer_state(path, optimizer)
    scaler.load_state_dict(state.extra.get("scaler", {}))
    _restore_rank_rng(path, state, ctx)
    LOG.info("resumed %s at step %d (epoch %d)", path, state.step, state.epoch)
    return Progress(step=state.step, best_metric=state.extra.get("best_metric"),
                    best_step=state.extra.get("best_step"))


def _check_same_schedule(path: Path, state: TrainState, steps_per_epoch: int,
                         total_steps: int, cfg: TrainConfig) -> None:
    saved: dict[str, Any] = state.extra
    for key, now in (("steps_per_epoch", steps_per_epoch), ("total_steps", total_steps)):
        if saved.get(key) != now:
            raise CheckpointError(
                f"{path}: {key} was {saved.get(key)} and is now {now}; the data set, batch "
                "size, world size, grad_accum, epochs or max_steps changed, so the run cannot "
                "continue exactly")
    saved_cfg = saved.get("train_config", {})
    changed = config_differences(saved_cfg, dataclass_to_dict(cfg)) if saved_cfg else []
    if changed:
        LOG.warning("%s: train config differs from the original run: %s", path,
                    "; ".join(changed[:5]))


def _restore_rank_rng(path: Path, state: TrainState, ctx: DistContext) -> None:
    per_rank = state.extra.get("rng_per_rank") or [state.rng]
    if len(per_rank) != ctx.world_size:
        LOG.warning("%s: saved by %d ranks, resuming with %d; RNG streams restart from rank "
                    "0's", path, len(per_rank), ctx.world_size)
        restore_rng_state(per_rank[0])
        return
    restore_rng_state(per_rank[ctx.rank])

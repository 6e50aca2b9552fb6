"""A run directory and the state that makes ``--resume`` continue exactly where a run stopped.

A checkpoint at step ``s`` holds the state after ``s`` optimiser steps: weights, optimizer,
AMP scaler, every rank's RNG snapshot, and where in which epoch the next batch comes from. The
LR schedule is a pure function of the step, so it needs no state of its own.

``checkpoints/last`` (and ``best``, ``step_*``) are links to versions written whole before one
rename switches them (``model_io.atomic``). ``resume_checkpoint`` finds the newest complete one
wherever a kill left it; a run folder that has any is never restarted from step 0.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io.checkpoint import TrainState, is_complete_checkpoint, recover_directory
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.distributed import DistContext, gather_objects
from monotakd_ros.training.rng_state import capture_rng_state, restore_rng_state
from monotakd_ros.training.stages import Stage
from monotakd_ros.training.step import OptimizerStep, restore_step_state, save_step_state

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


WRITE_PROBE_PREFIX = ".write-test-"


def check_writable(folder: Path, what: str) -> None:
    """ConfigError naming ``folder`` unless a file can be created, flushed and removed there."""
    probe = folder / f"{WRITE_PROBE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"ok")
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{what} {folder}: not writable ({err.strerror or err})") from err


def has_saved_state(run: RunDir) -> bool:
    """Whether the run folder holds checkpoints or their leftovers (a run to resume)."""
    # Another rank's write probe (or one a kill left) is not a checkpoint.
    return run.checkpoints.is_dir() and any(
        not p.name.startswith(WRITE_PROBE_PREFIX) for p in run.checkpoints.iterdir())


def resume_checkpoint(run: RunDir) -> Path:
    """``last``, or the newest complete checkpoint a kill left (versions, temporaries, step_*)."""
    found = recover_directory(run.last)
    if found is not None:
        return found
    steps = [p for p in run.checkpoints.glob("step_*") if is_complete_checkpoint(p)]
    if steps:
        newest = max(steps, key=lambda p: p.name)
        LOG.warning("%s is missing or incomplete; resuming from %s", run.last, newest)
        return newest
    if has_saved_state(run):
        left = sorted(p.name for p in run.checkpoints.iterdir())
        raise CheckpointError(f"{run.checkpoints}: no complete checkpoint to resume from (found "
                              f"only {left[:5]}); the run is not restarted from step 0 over "
                              "them: remove that folder or choose another --out")
    raise CheckpointError(f"{run.last}: no checkpoint to resume from; this run folder has "
                          "never saved one (train without --resume, or point --out at the run "
                          "folder)")


def write_run_configs(run: RunDir, stage: Stage, cfg: TrainConfig, command: list[str]) -> None:
    """Record the resolved model and train configs and the command line in the run folder."""
    run.root.mkdir(parents=True, exist_ok=True)
    record = {"stage": stage.name, "command": command,
              "model_config": dataclass_to_dict(stage.model_cfg),
              "train_config": dataclass_to_dict(cfg)}
    (run.root / "run_config.json").write_text(json.dumps(record, indent=2) + "\n")


def save_training_checkpoint(path: Path, stage: Stage, stepper: OptimizerStep,
                             progress: Progress, steps_per_epoch: int, total_steps: int,
                             cfg: TrainConfig, ctx: DistContext,
                             metrics: dict[str, float] | None = None) -> None:
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
        "best_metric": progress.best_metric,
        "best_step": progress.best_step,
    })
    save_step_state(path, stage, stepper, state, metrics)


def restore_training(run: RunDir, stage: Stage, stepper: OptimizerStep, steps_per_epoch: int,
                     total_steps: int, cfg: TrainConfig, ctx: DistContext) -> Progress:
    """Continue from ``resume_checkpoint(run)``; refuse a run that cannot continue exactly."""
    path = resume_checkpoint(run)

    def same_schedule(state: TrainState) -> None:
        for key, now in (("steps_per_epoch", steps_per_epoch), ("total_steps", total_steps)):
            if state.extra.get(key) != now:
                raise CheckpointError(
                    f"{path}: {key} was {state.extra.get(key)} and is now {now}; the data set, "
                    "batch size, world size, grad_accum, epochs or max_steps changed, so the "
                    "run cannot continue exactly")

    state = restore_step_state(path, stage, stepper, same_schedule)
    _restore_rank_rng(path, state, ctx)
    if ctx.is_main:  # loaded: what interrupted saves left can go now
        for orphan in atomic.remove_orphans(run.checkpoints, keep=path):
            LOG.info("removed %s, left by an interrupted save", orphan)
    LOG.info("resumed %s at step %d (epoch %d)", path, state.step, state.epoch)
    return Progress(step=state.step, best_metric=state.extra.get("best_metric"),
                    best_step=state.extra.get("best_step"))


def _restore_rank_rng(path: Path, state: TrainState, ctx: DistContext) -> None:
    per_rank = state.extra.get("rng_per_rank") or [state.rng]
    if len(per_rank) != ctx.world_size:
        LOG.warning("%s: saved by %d ranks, resuming with %d; RNG streams restart from rank "
                    "0's", path, len(per_rank), ctx.world_size)
        restore_rng_state(per_rank[0])
        return
    restore_rng_state(per_rank[ctx.rank])

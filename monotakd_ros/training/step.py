"""The one optimiser step of every training loop, and the one way to save and resume it.

The stage trainer (``training.trainer``) and the distillation engine (``distiller.engine``)
both call ``OptimizerStep.run``: backward passes over ``micro_batches`` under autocast, then
unscale, clip and step. A step whose loss or gradients are not finite is skipped: no parameter
or buffer (BatchNorm statistics) changes, the gradients are zeroed, it is counted and logged,
and ``max_nonfinite_steps`` of them in a row stop the run with TrainingError.
``save_step_state`` and ``restore_step_state`` write and check what both loops resume from.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import CheckpointError, ConfigError, TrainingError
from monotakd_ros.model_io.checkpoint import (
    TrainState,
    load_checkpoint_meta,
    load_model_weights,
    load_optimizer_state,
    load_train_state,
    save_checkpoint,
)
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.stages import Stage, architecture_differences, config_differences

LOG = logging.getLogger(__name__)

Forward = Callable[[int], dict[str, torch.Tensor]]  # micro-batch index -> loss terms ("total")
Reduce = Callable[[dict[str, float]], dict[str, float]]  # e.g. the mean over DDP ranks


@dataclass(frozen=True)
class StepOutcome:
    """What a step did: ``applied`` False means skipped as non-finite."""

    applied: bool
    losses: dict[str, float]  # mean over the micro-batches (and ranks); grad_norm when clipped


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases and normalisation parameters (1-D) get no weight decay."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def autocast_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Autocast for ``amp`` = fp16 (CUDA only) or bf16, a no-op for ``off``."""
    if amp == "off":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp: fp16 needs a CUDA device, running on {device}; use bf16")
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` (BatchNorm1d/2d/3d and SyncBatchNorm)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class OptimizerStep:
    """AMP, accumulation, clipping and the non-finite policy around one optimizer."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
        self.model = model  # whose parameters are clipped and checked
        self.cfg = cfg
        self.device = device
        self.optimizer = build_optimizer(model, cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        self.nonfinite_in_row = 0
        self.nonfinite_total = 0
        # The only buffers a forward pass changes (anchors and voxel centres never move).
        self.batch_norm_layers = batchnorm_layers(model)
        self._batch_norm_buffers = [buffer for layer in self.batch_norm_layers
                                    for buffer in layer.buffers(recurse=False)]

    def set_learning_rate(self, lr: float) -> None:
        """The same LR for every parameter group."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def run(self, forward: Forward, micro_batches: int = 1,
            no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
            reduce: Reduce | None = None, step: int = 0) -> StepOutcome:
        """Accumulate, then step or skip; ``no_sync`` (DDP) wraps all but the last backward."""
        sums: dict[str, float] = {}
        # BatchNorm statistics move in the forward pass; a skipped step puts them back.
        saved = [buffer.clone() for buffer in self._batch_norm_buffers]
        for micro in range(micro_batches):
            is_last = micro == micro_batches - 1
            with no_sync() if no_sync is not None and not is_last else contextlib.nullcontext():
                with autocast_context(self.device, self.cfg.amp):
                    terms = forward(micro)
                self.scaler.scale(terms["total"] / micro_batches).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / micro_batches
        losses = reduce(sums) if reduce is not None else sums
        grad_norm = self._unscaled_grad_norm()  # clips when grad_clip > 0
        if not (math.isfinite(losses["total"]) and math.isfinite(grad_norm)):
            with torch.no_grad():
                for buffer, value in zip(self._batch_norm_buffers, saved, strict=True):
                    buffer.copy_(value)
            self._skip(losses, grad_norm, step)
            return StepOutcome(applied=False, losses=losses)
        if self.cfg.grad_clip > 0:
            losses["grad_norm"] = grad_norm
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_in_row = 0
        return StepOutcome(applied=True, losses=losses)

    def _unscaled_grad_norm(self) -> float:
        """Global norm of the true gradients, after clipping them if ``grad_clip`` > 0."""
        self.scaler.unscale_(self.optimizer)  # no-op without fp16
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.grad_clip > 0:
            return float(nn.utils.clip_grad_norm_(parameters, self.cfg.grad_clip))
        return float(nn.utils.get_total_norm([p.grad for p in parameters]))

    def _skip(self, losses: dict[str, float], grad_norm: float, step: int) -> None:
        self.scaler.update()  # fp16: a lower loss scale after an overflow, as AMP intends
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_in_row += 1
        self.nonfinite_total += 1
        LOG.warning("step %d skipped: non-finite loss or gradients (total %s, grad norm %s); "
                    "%d in a row, %d in this run", step, losses["total"], grad_norm,
                    self.nonfinite_in_row, self.nonfinite_total)
        if self.nonfinite_in_row >= self.cfg.max_nonfinite_steps:
            raise TrainingError(
                f"{self.nonfinite_in_row} steps in a row (up to step {step}) had a non-finite "
                f"loss or gradients (train.max_nonfinite_steps = "
                f"{self.cfg.max_nonfinite_steps}); no parameter was changed by them. Lower "
                "train.lr, keep train.grad_clip > 0 or check the data, then resume from the "
                "last checkpoint")

    def state_extra(self) -> dict[str, Any]:
        """What a checkpoint keeps of this object besides the optimizer itself."""
        return {"scaler": self.scaler.state_dict(), "nonfinite_steps": self.nonfinite_total}


def save_step_state(path: Path, stage: Stage, stepper: OptimizerStep, state: TrainState,
                    metrics: dict[str, float] | None = None) -> Path:
    """Checkpoint of weights, optimizer, scaler and ``state`` (its extra gains the scaler)."""
    extra = {**state.extra, **stepper.state_extra(),
             "train_config": dataclass_to_dict(stepper.cfg)}
    full = TrainState(step=state.step, epoch=state.epoch, rng=state.rng,
                      scheduler=state.scheduler, extra=extra)
    meta = stage.checkpoint_meta(state.step, state.epoch, metrics)
    return save_checkpoint(path, stage.model, meta, stepper.optimizer, full)


def restore_step_state(path: Path, stage: Stage, stepper: OptimizerStep,
                       check: Callable[[TrainState], None] | None = None) -> TrainState:
    """Load what ``save_step_state`` wrote after checking stage, model config and ``check``.

    Nothing is loaded into the model or optimizer unless every check passes. RNG streams are
    the caller's: they depend on how many ranks or sources a loop has.
    """
    meta = load_checkpoint_meta(path)
    if meta.stage != stage.name:
        raise CheckpointError(f"{path}: is a {meta.stage!r} run, cannot resume it as "
                              f"{stage.name!r}")
    differences = architecture_differences(meta, path, stage.model_cfg)
    if differences:
        raise CheckpointError(f"{path}: model config changed since the run started: "
                              + "; ".join(differences[:5]))
    state = load_train_state(path)
    if check is not None:
        check(state)
    saved_cfg = state.extra.get("train_config") or {}
    changed = config_differences(saved_cfg, dataclass_to_dict(stepper.cfg)) if saved_cfg else []
    if changed:
        LOG.warning("%s: train config differs from the original run: %s", path,
                    "; ".join(changed[:5]))
    load_model_weights(path, stage.model)
    load_optimizer_state(path, stepper.optimizer)
    stepper.scaler.load_state_dict(state.extra.get("scaler", {}))
    stepper.nonfinite_total = int(state.extra.get("nonfinite_steps") or 0)
    return state

"""Learning-rate schedules as pure functions of the optimiser step."""

from __future__ import annotations

import math

from monotakd_ros.training.config import TrainConfig


def cosine_interpolation(start: float, end: float, fraction: float) -> float:
    """Half-cosine from ``start`` (fraction 0) to ``end`` (fraction 1)."""
    fraction = min(max(fraction, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def onecycle_lr(step: int, total_steps: int, peak_lr: float, pct_start: float,
                div_factor: float, final_div_factor: float) -> float:
    """One-cycle: cosine rise from peak/div to peak, then cosine fall to peak/div/final_div."""
    start_lr = peak_lr / div_factor
    end_lr = start_lr / final_div_factor
    rise_steps = max(1, round(pct_start * total_steps))
    if step < rise_steps:
        return cosine_interpolation(start_lr, peak_lr, step / rise_steps)
    fall_steps = max(1, total_steps - rise_steps)
    return cosine_interpolation(peak_lr, end_lr, (step - rise_steps) / fall_steps)


def warmup_cosine_lr(step: int, total_steps: int, peak_lr: float, warmup_steps: int,
                     min_lr_ratio: float) -> float:
    """Linear warm-up reaching ``peak_lr`` at step ``warmup_steps - 1``, then cosine decay."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    return cosine_interpolation(peak_lr, peak_lr * min_lr_ratio,
                                (step - warmup_steps) / decay_steps)


def learning_rate_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate for optimiser step ``step`` of ``total_steps`` under ``cfg.schedule``."""
    if cfg.schedule == "onecycle":
        return onecycle_lr(step, total_steps, cfg.lr, cfg.pct_start, cfg.div_factor,
                           cfg.final_div_factor)
    if cfg.schedule == "cosine":
        return warmup_cosine_lr(step, total_steps, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
    return cfg.lr

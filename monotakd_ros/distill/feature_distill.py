"""BEV feature distillation: IMD, CMRD and the CMKD-style direct term.

Targets come from frozen models and are detached here as well. With ``normalize`` each map is
divided by its own per-sample RMS over all channels and cells, so the teacher's, TA's and
student's scales need not match and the terms stay bounded (MSE of unit-RMS maps is at most 4).
Upstream min-max normalises both maps too, but detaches the student's, so its IMD term never
trains anything; here the student side (its RMS included) stays in the graph. Scaling by the
target's RMS alone was rejected: a frozen map with a tiny RMS turned the loss into 1e5-size noise,
and per-channel scales blow up nearly dead channels the same way.
"""

from __future__ import annotations

import torch

_EPS = 1e-6


def sample_rms(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1) root-mean-square of each sample's whole (C, H, W) map (keeps the graph)."""
    return x.float().pow(2).mean(dim=(1, 2, 3), keepdim=True).add(_EPS**2).sqrt()


def feature_mse(student: torch.Tensor, target: torch.Tensor, normalize: bool,
                cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between (B, C, H, W) maps; optional (B, 1, H, W) cell weights average over their sum."""
    if student.shape != target.shape:
        raise ValueError(f"feature maps differ in shape: student {tuple(student.shape)} vs "
                         f"target {tuple(target.shape)}")
    target = target.detach().float()
    student = student.float()
    if normalize:
        student, target = student / sample_rms(student), target / sample_rms(target)
    error = (student - target).pow(2)
    if cell_weights is None:
        return error.mean()
    weights = cell_weights.detach().float()
    return (error * weights).sum() / (weights.sum() * error.shape[1]).clamp_min(_EPS)


def imd_loss(bev_student: torch.Tensor, bev_assistant: torch.Tensor, normalize: bool = True,
             cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Image-based distillation: MSE(F_S, F_TA)."""
    return feature_mse(bev_student, bev_assistant, normalize, cell_weights)


def cmkd_loss(bev_student: torch.Tensor, bev_teacher: torch.Tensor, normalize: bool = True,
              cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """CMKD-style cross-modal term without a TA: MSE(F_S, F_T)."""
    return feature_mse(bev_student, bev_teacher, normalize, cell_weights)


def cmrd_target(bev_teacher: torch.Tensor, bev_assistant: torch.Tensor, threshold_ratio: float,
                normalize: bool = True, signed: bool = False) -> torch.Tensor:
    """R = |F_T − F_TA| (or F_T − F_TA if ``signed``); |R| < ratio · max|R| per sample → 0."""
    teacher = bev_teacher.detach().float()
    assistant = bev_assistant.detach().float()
    if normalize:
        teacher, assistant = teacher / sample_rms(teacher), assistant / sample_rms(assistant)
    residual = teacher - assistant
    magnitude = residual.abs()
    peak = magnitude.amax(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    kept = residual if signed else magnitude
    return torch.where(magnitude >= threshold_ratio * peak, kept, torch.zeros_like(kept))


def foreground_cells(teacher_cls_logits: torch.Tensor, grid_hw: tuple[int, int],
                     score_threshold: float) -> torch.Tensor:
    """(B, 1, ny, nx) 1.0 where any of a cell's anchors scores above the threshold (teacher)."""
    batch = teacher_cls_logits.shape[0]
    scores = torch.sigmoid(teacher_cls_logits.detach().float())  # (B, ny·nx·anchors, C)
    per_cell = scores.reshape(batch, grid_hw[0], grid_hw[1], -1).amax(dim=-1)  # (B, ny, nx)
    return (per_cell > score_threshold).float().unsqueeze(1)


def cmrd_loss(bev_spatial: torch.Tensor, residual_target: torch.Tensor,
              cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-modality residual distillation: MSE(F_S_spa, R), optionally cell-weighted."""
    return feature_mse(bev_spatial, residual_target, normalize=False, cell_weights=cell_weights)

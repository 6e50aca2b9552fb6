"""Residual box coding w.r.t. anchors (SECOND / PointPillars) and the 2-bin direction code.

Boxes are LiDAR ``[x, y, z, l, w, h, yaw]`` with (x, y, z) the centre. With the anchor's BEV
diagonal ``d = sqrt(l_a² + w_a²)`` the residuals are
``(dx/d, dy/d, dz/h_a, log(l/l_a), log(w/w_a), log(h/h_a), yaw - yaw_a)``.
"""

from __future__ import annotations

import math

import torch

# exp() of a log-size residual above this overflows float16 and means nothing physically.
_MAX_LOG_SIZE = 6.0


def limit_period(angle: torch.Tensor, offset: float, period: float) -> torch.Tensor:
    """``angle`` wrapped into ``[-offset·period, (1 - offset)·period)``."""
    return angle - torch.floor(angle / period + offset) * period


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(…, 7) boxes and matching (…, 7) anchors → (…, 7) residuals."""
    xa, ya, za, la, wa, ha, ra = anchors.unbind(-1)
    xg, yg, zg, lg, wg, hg, rg = boxes.unbind(-1)
    diagonal = torch.sqrt(la**2 + wa**2)
    return torch.stack([
        (xg - xa) / diagonal, (yg - ya) / diagonal, (zg - za) / ha,
        torch.log(lg / la), torch.log(wg / wa), torch.log(hg / ha), rg - ra,
    ], dim=-1)


def decode_boxes(residuals: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`: (…, 7) residuals + anchors → (…, 7) boxes."""
    xa, ya, za, la, wa, ha, ra = anchors.unbind(-1)
    xt, yt, zt, lt, wt, ht, rt = residuals.unbind(-1)
    diagonal = torch.sqrt(la**2 + wa**2)
    return torch.stack([
        xt * diagonal + xa, yt * diagonal + ya, zt * ha + za,
        torch.exp(lt.clamp(max=_MAX_LOG_SIZE)) * la,
        torch.exp(wt.clamp(max=_MAX_LOG_SIZE)) * wa,
        torch.exp(ht.clamp(max=_MAX_LOG_SIZE)) * ha,
        rt + ra,
    ], dim=-1)


def direction_bins(yaw_rad: torch.Tensor, dir_offset_rad: float, num_bins: int = 2
                   ) -> torch.Tensor:
    """Direction class of each yaw: which half-turn (for 2 bins) it lies in after the offset."""
    period = 2.0 * math.pi / num_bins
    wrapped = limit_period(yaw_rad - dir_offset_rad, 0.0, 2.0 * math.pi)
    return torch.floor(wrapped / period).long().clamp(0, num_bins - 1)


def yaw_with_direction(yaw_rad: torch.Tensor, dir_bin: torch.Tensor, dir_offset_rad: float,
                       num_bins: int = 2) -> torch.Tensor:
    """Resolve the half-turn ambiguity of a regressed yaw with its predicted direction bin."""
    period = 2.0 * math.pi / num_bins
    within = limit_period(yaw_rad - dir_offset_rad, 0.0, period)
    return within + dir_offset_rad + period * dir_bin.to(yaw_rad.dtype)

#!/usr/bin/env python3
r"""How much does the CMRD target hold? Surviving cells, magnitudes and gradients per option.

For a trained teacher and TA (each read with the model config stored in its checkpoint) and a
student started from the TA (upstream's initialisation, or --student CKPT), over a few labelled
frames, for every threshold ratio x {absolute, signed} residual x foreground weight:

- ``cells %``: BEV cells where any channel of R survives the threshold;
- ``entries %``: surviving (channel, cell) entries;
- ``|R| kept``: mean magnitude of the surviving entries;
- ``fg cells %``: share of the surviving cells the teacher scores as foreground;
- ``grad ratio``: gradient norm reaching the spatial-cue branch from the weighted CMRD term
  divided by that from the GT detection term (how much CMRD steers the branch).

Also prints the RMS of the student's F_S_spa and of F_S (the branch's output magnitude).

    python scripts/cmrd_target_study.py --teacher runs/teacher/checkpoints/last \
        --assistant runs/ta/checkpoints/last --data data/synth_object --frames 8
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from monotakd_ros.data.batch import collate_frames
from monotakd_ros.distill.config import distill_preset
from monotakd_ros.distill.feature_distill import cmrd_target, foreground_cells
from monotakd_ros.distill.losses import student_losses
from monotakd_ros.errors import MonotakdError
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.build import build_student
from monotakd_ros.models.config import saved_model_config
from monotakd_ros.training.data_loading import build_val_dataset, input_spec_for
from monotakd_ros.training.stages import (
    camera_forward,
    gt_targets,
    initialise_from,
    load_trained_stage,
)

LOG = logging.getLogger("cmrd_target_study")
RATIOS = (0.0, 0.3, 0.6)


def _grad_norm(module: torch.nn.Module) -> float:
    grads = [p.grad.norm() ** 2 for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).sum().sqrt()) if grads else 0.0


def study(args: argparse.Namespace) -> str:
    """Markdown table of the options, over ``args.frames`` val frames."""
    teacher_cfg = saved_model_config(load_checkpoint_meta(args.teacher), args.teacher)
    ta_cfg = saved_model_config(load_checkpoint_meta(args.assistant), args.assistant)
    spec = input_spec_for(ta_cfg)
    teacher = load_trained_stage("teacher", teacher_cfg, spec, args.teacher).model
    assistant = load_trained_stage("ta", ta_cfg, spec, args.assistant).model
    student = build_student(ta_cfg)
    initialise_from(args.student or args.assistant, "student", ta_cfg, student)
    student.train()
    dataset = build_val_dataset(args.data, args.split, spec)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        collate_fn=collate_frames)
    rows: dict[tuple, list[list[float]]] = {}
    spa_rms, vis_rms = [], []
    for batch in itertools.islice(loader, max(1, args.frames // args.batch_size)):
        with torch.no_grad():
            t_out = teacher(batch.points)
            ta_out = camera_forward(assistant, batch)
        targets = gt_targets(student.head, batch, ta_cfg)
        for ratio, signed, fg_weight in itertools.product(RATIOS, (False, True), (0.0, 4.0)):
            out = camera_forward(student, batch)
            spa_rms.append(float(out.features.bev_spatial.detach().pow(2).mean().sqrt()))
            vis_rms.append(float(out.features.bev_visual.detach().pow(2).mean().sqrt()))
            residual = cmrd_target(t_out.features.bev, ta_out.features.bev_visual, ratio,
                                   True, signed)
            kept = residual != 0  # (B, C, H, W)
            cells = kept.any(dim=1, keepdim=True).float()  # (B, 1, H, W)
            foreground = foreground_cells(t_out.head.cls_logits, residual.shape[-2:], 0.1)
            cfg = distill_preset("takd", cmrd_threshold_ratio=ratio, cmrd_signed=signed,
                                 cmrd_foreground_weight=fg_weight)
            terms = student_losses(cfg, out, targets=targets, teacher=t_out, assistant=ta_out)
            student.zero_grad(set_to_none=True)
            terms.cmrd.backward(retain_graph=True)
            cmrd_grad = _grad_norm(student.spatial_cue)
            student.zero_grad(set_to_none=True)
            (terms.det_cls + terms.det_box + terms.det_dir).backward()
            det_grad = _grad_norm(student.spatial_cue)
            rows.setdefault((ratio, signed, fg_weight), []).append([
                100 * float(cells.mean()), 100 * float(kept.float().mean()),
                float(residual.abs()[kept].mean()) if kept.any() else 0.0,
                100 * float((cells * foreground).sum() / cells.sum().clamp_min(1)),
                cmrd_grad / max(det_grad, 1e-12)])
    lines = ["| ratio | residual | fg weight | cells % | entries % | abs(R) kept | fg cells % |"
             " grad CMRD / det |", "|---|---|---|---|---|---|---|---|"]
    for (ratio, signed, fg_weight), values in rows.items():
        mean = torch.tensor(values).mean(dim=0).tolist()
        lines.append(f"| {ratio} | {'signed' if signed else 'abs'} | {fg_weight} | "
                     f"{mean[0]:.2f} | {mean[1]:.3f} | {mean[2]:.2f} | {mean[3]:.1f} | "
                     f"{mean[4]:.4f} |")
    lines.append("")
    lines.append(f"student F_S_spa RMS {sum(spa_rms) / len(spa_rms):.4f}, F_S RMS "
                 f"{sum(vis_rms) / len(vis_rms):.4f} (targets are RMS-normalised: RMS 1)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--assistant", type=Path, required=True)
    parser.add_argument("--student", type=Path, default=None,
                        help="student checkpoint (default: a student started from the TA)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the table."""
    logging.basicConfig(level=logging.WARNING)
    args = build_parser().parse_args(argv)
    torch.manual_seed(0)
    try:
        print(study(args))
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

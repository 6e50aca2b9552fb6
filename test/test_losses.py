"""Specification of the losses: hand-checked values, gradient routing per term, a tiny overfit."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers_models import T_RECT_FROM_LIDAR, tiny_config

from monotakd_ros.distill import DistillConfig, distill_preset, student_losses
from monotakd_ros.distill.config import DetectionLossWeights
from monotakd_ros.distill.feature_distill import (
    cmrd_loss,
    cmrd_target,
    foreground_cells,
    imd_loss,
)
from monotakd_ros.distill.losses import LossTerms, detector_losses
from monotakd_ros.distill.response_distill import quality_focal_loss, response_loss
from monotakd_ros.errors import ConfigError
from monotakd_ros.models import build_assistant, build_student, build_teacher, freeze
from monotakd_ros.models.config import ModelConfig, ScnetConfig, SpatialCueConfig
from monotakd_ros.models.detection_loss import detection_loss, sigmoid_focal_loss
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.models.target_assigner import AnchorTargets, assign_targets

LN2 = math.log(2.0)


# ---------------------------------------------------------------- hand-checked values


def test_focal_and_quality_focal_values() -> None:
    zero = torch.zeros(2)
    focal = sigmoid_focal_loss(zero, torch.tensor([1.0, 0.0]))
    # p = 0.5: (1 - p_t)^2 = 1/4, alpha_t = 0.25 / 0.75, CE = ln 2
    torch.testing.assert_close(focal, torch.tensor([0.25, 0.75]) * 0.25 * LN2)
    qfl = quality_focal_loss(zero, torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(qfl, torch.tensor([0.0, 0.25 * LN2]))


def test_detection_loss_hand_example() -> None:
    head = HeadOutput(cls_logits=torch.zeros(1, 3, 2), box_residuals=torch.zeros(1, 3, 7),
                      dir_logits=torch.zeros(1, 3, 2))
    box_target = torch.zeros(1, 3, 7)
    box_target[0, 0, 0], box_target[0, 0, 6] = 0.1, 0.2
    targets = AnchorTargets(labels=torch.tensor([[1, 0, -1]]), box_residuals=box_target,
                            dir_bins=torch.tensor([[1, 0, 0]]))
    terms = detection_loss(head, targets, DetectionLossWeights())
    # anchor 0: positive of class 0 (0.0625 + 0.1875) ln2; anchor 1: two negatives 0.375 ln2
    assert float(terms.cls) == pytest.approx(0.625 * LN2, rel=1e-5)
    beta = 1 / 9
    dx = 0.5 * 0.1**2 / beta  # |0.1| < beta: quadratic branch
    dyaw = math.sin(0.2) - 0.5 * beta  # |sin(-0.2)| > beta: linear branch
    assert float(terms.box) == pytest.approx(dx + dyaw, rel=1e-5)
    assert float(terms.dir) == pytest.approx(LN2, rel=1e-5)
    weighted = detector_losses(head, targets, DetectionLossWeights()).scalars()
    assert weighted["det_cls"] == pytest.approx(2.0 * 0.625 * LN2, rel=1e-5)
    assert weighted["total"] == pytest.approx(2 * 0.625 * LN2 + 2 * (dx + dyaw) + 0.4 * LN2,
                                              rel=1e-5)


def test_code_weights_scale_each_residual_of_the_box_term() -> None:
    head = HeadOutput(cls_logits=torch.zeros(1, 1, 1), box_residuals=torch.zeros(1, 1, 7),
                      dir_logits=torch.zeros(1, 1, 2))
    box_target = torch.tensor([[[0.03, 0.0, 0.06, 0.0, 0.0, 0.09, 0.0]]])  # x, z, h errors
    targets = AnchorTargets(labels=torch.tensor([[1]]), box_residuals=box_target,
                            dir_bins=torch.tensor([[0]]))
    quadratic = [0.5 * v**2 * 9 for v in (0.03, 0.06, 0.09)]  # all below beta = 1/9
    plain = detection_loss(head, targets, DetectionLossWeights())
    assert float(plain.box) == pytest.approx(sum(quadratic), rel=1e-5)
    vertical = DetectionLossWeights(code_weights=(1.0, 1.0, 4.0, 1.0, 1.0, 4.0, 1.0))
    weighted = detection_loss(head, targets, vertical)
    assert float(weighted.box) == pytest.approx(
        quadratic[0] + 4 * quadratic[1] + 4 * quadratic[2], rel=1e-5)
    assert float(weighted.cls) == float(plain.cls)  # only the box term changes
    with pytest.raises(ConfigError, match="code_weights: need 7"):
        DetectionLossWeights(code_weights=(1.0, 1.0))
    with pytest.raises(ConfigError, match=r"code_weights\[5\]"):
        DetectionLossWeights(code_weights=(1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0))


def test_cmrd_target_thresholds_each_sample_at_its_own_max() -> None:
    teacher = torch.tensor([[[[10.0, 5.0], [0.0, 7.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    assistant = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.5], [0.9, 0.2]]]])
    target = cmrd_target(teacher, assistant, threshold_ratio=0.6, normalize=False)
    expected = torch.tensor([[[[10.0, 0.0], [0.0, 7.0]]], [[[1.0, 0.0], [0.0, 0.8]]]])
    torch.testing.assert_close(target, expected)


def test_signed_cmrd_target_keeps_the_sign_and_thresholds_the_magnitude() -> None:
    teacher = torch.tensor([[[[10.0, 0.0], [0.0, 7.0]]]])
    assistant = torch.tensor([[[[0.0, 9.0], [3.0, 0.0]]]])
    signed = cmrd_target(teacher, assistant, threshold_ratio=0.6, normalize=False, signed=True)
    torch.testing.assert_close(signed, torch.tensor([[[[10.0, -9.0], [0.0, 7.0]]]]))
    none_cut = cmrd_target(teacher, assistant, threshold_ratio=0.0, normalize=False)
    torch.testing.assert_close(none_cut, torch.tensor([[[[10.0, 9.0], [3.0, 7.0]]]]))


def test_foreground_weighted_cmrd_by_hand() -> None:
    """Cells the teacher scores > thr weigh 1 + w; the MSE is averaged over the weights."""
    logits = torch.full((1, 2 * 3 * 2, 3), -9.0)  # (B, ny·nx·anchors, C): 2 x 3 cells, 2 anchors
    logits[0, 2 * 4 + 1, 2] = 0.0  # cell (row 1, col 1), its 2nd anchor, class 2: score 0.5
    foreground = foreground_cells(logits, (2, 3), score_threshold=0.1)
    expected = torch.zeros(1, 1, 2, 3)
    expected[0, 0, 1, 1] = 1.0
    torch.testing.assert_close(foreground, expected)
    student, target = torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3)
    target[0, :, 1, 1] = 2.0  # error 4 on both channels of the foreground cell
    target[0, :, 0, 0] = 1.0  # error 1 on a background cell
    weights = 1.0 + 3.0 * foreground  # foreground 4, the other five cells 1: sum 9
    expected_loss = (4.0 * 4.0 * 2 + 1.0 * 1.0 * 2) / (9.0 * 2)
    assert float(cmrd_loss(student, target, weights)) == pytest.approx(expected_loss)
    assert float(cmrd_loss(student, target)) == pytest.approx((4.0 * 2 + 2) / 12)


def test_normalised_feature_loss_is_scale_free_but_not_blind() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(2, 4, 5, 5), torch.rand(2, 4, 5, 5)
    assert float(imd_loss(a, 7.0 * a)) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(imd_loss(3.0 * a, b), imd_loss(a, b))
    assert float(imd_loss(a, b)) > 0.01
    assert float(imd_loss(a, 7.0 * a, normalize=False)) == pytest.approx(
        float((36.0 * a**2).mean()), rel=1e-5)


def test_response_terms_vanish_where_the_student_matches_the_teacher() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 3)
    logits[0, :3] -= 8.0  # anchors 0-2: teacher score < 0.1, no box/direction supervision
    teacher = HeadOutput(logits, torch.randn(1, 6, 7), torch.randn(1, 6, 2))
    student = HeadOutput(logits.clone().requires_grad_(), teacher.box_residuals.clone(),
                         teacher.dir_logits.clone().requires_grad_())
    terms = response_loss(student, teacher, score_threshold=0.1)
    assert float(terms.cls.detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(terms.box.detach()) == pytest.approx(0.0, abs=1e-6)
    (grad_cls, grad_dir) = torch.autograd.grad(terms.cls + terms.dir,
                                               [student.cls_logits, student.dir_logits])
    assert grad_cls.abs().max() < 1e-6 and grad_dir.abs().max() < 1e-6
    moved = HeadOutput(student.cls_logits.detach(), student.box_residuals + 1.0,
                       student.dir_logits.detach())
    per_anchor_box = response_loss(moved, teacher).box  # 6 of 7 values off by 1 (yaw: sin 1)
    confident = int((torch.sigmoid(logits).amax(-1) > 0.1).sum())
    assert confident == 3
    assert float(per_anchor_box) == pytest.approx(6 * (1 - 0.5 / 9) + math.sin(1.0) - 0.5 / 9,
                                                  rel=1e-5)


# ---------------------------------------------------------------- presets and validation


def test_presets_switch_the_right_terms() -> None:
    none, cmkd, imd, takd = (distill_preset(m) for m in ("none", "cmkd", "imd", "takd"))
    assert not none.needs_teacher and not none.needs_assistant
    assert cmkd.needs_teacher and not cmkd.needs_assistant and cmkd.cmkd_weight > 0
    assert imd.needs_assistant and not imd.needs_teacher and imd.imd_weight == 1.0
    assert takd.needs_teacher and takd.needs_assistant
    assert (takd.imd_weight, takd.cmrd_weight, takd.cmrd_threshold_ratio) == (1.0, 0.2, 0.6)
    assert takd.uses_response and cmkd.uses_response and not imd.uses_response
    assert imd.response_cls_weight == 0.0  # "imd" is IMD + GT only, not TAKD without CMRD
    with pytest.raises(ConfigError, match="distill mode 'lpcg'"):
        distill_preset("lpcg")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="distill.imd_weight"):
        DistillConfig(imd_weight=-1.0)
    with pytest.raises(ConfigError, match="cmrd_threshold_ratio"):
        DistillConfig(cmrd_threshold_ratio=1.5)


def test_upstream_and_cmkd_presets_carry_the_published_weights() -> None:
    upstream = distill_preset("upstream")
    assert (upstream.response_cls_weight, upstream.response_box_weight,
            upstream.response_dir_weight) == (2.0, 2.0, 0.4)
    assert (upstream.cmrd_weight, upstream.imd_weight, upstream.gt_weight) == (0.2, 0.0, 0.0)
    assert upstream.cmrd_threshold_ratio == 0.6 and upstream.cmkd_weight == 0.0
    cmkd = distill_preset("cmkd")
    assert (cmkd.cmkd_weight, cmkd.normalize_features, cmkd.response_cls_weight) == (32.0, False,
                                                                                   2.0)
    assert cmkd.imd_weight == cmkd.cmrd_weight == 0.0 and not cmkd.needs_assistant


def test_factorial_presets_differ_only_in_the_feature_terms() -> None:
    cells = {(0.0, 0.0): "response", (1.0, 0.0): "imd_response", (0.0, 0.2): "cmrd_response",
             (1.0, 0.2): "takd"}
    takd = distill_preset("takd")
    for (imd, cmrd), name in cells.items():
        cfg = distill_preset(name)  # type: ignore[arg-type]
        assert (cfg.imd_weight, cfg.cmrd_weight, cfg.cmkd_weight) == (imd, cmrd, 0.0), name
        assert cfg.uses_response and cfg.gt_weight == 1.0, name
        assert dataclasses.replace(cfg, imd_weight=1.0, cmrd_weight=0.2) == takd, name


def test_gt_weight_scales_and_switches_off_the_detection_terms() -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    student, teacher = build_student(cfg), freeze(build_teacher(cfg))
    s = _scene(cfg)
    out = student(s["images"], s["P2"], s["T"])
    with torch.no_grad():
        t_out = teacher(s["points"])
    targets = assign_targets(student.head.anchors, student.head.anchor_classes, s["boxes"],
                             s["classes"], cfg.head)
    full = student_losses(distill_preset("response"), out, targets=targets, teacher=t_out)
    half = student_losses(distill_preset("response", gt_weight=0.5), out, targets=targets,
                          teacher=t_out)
    torch.testing.assert_close(half.det_box, 0.5 * full.det_box)
    upstream = student_losses(distill_preset("upstream", cmrd_weight=0.0), out, targets=targets,
                              teacher=t_out)
    assert set(upstream.present()) == {"resp_cls", "resp_box", "resp_dir"}
    torch.testing.assert_close(upstream.resp_box, 2.0 * full.resp_box)


# ---------------------------------------------------------------- gradient routing

STUDENT_GROUPS = ("trunk", "reduce", "depth_head", "collapse_visual", "collapse_spatial",
                  "spatial_cue", "fusion", "backbone", "head")
ALL = set(STUDENT_GROUPS)
# Which student modules each term alone must train (and no other).
ROUTES = {
    "imd": {"trunk", "reduce", "depth_head", "collapse_visual"},
    "cmkd": {"trunk", "reduce", "depth_head", "collapse_visual"},
    "cmrd": {"trunk", "reduce", "depth_head", "collapse_spatial", "spatial_cue"},
    "depth": {"trunk", "depth_head"},
    "detection": ALL,
    "resp_cls": ALL,
    "resp_box": ALL,
    "resp_dir": ALL,
}
ZERO = {"detection": DetectionLossWeights(0, 0, 0), "depth_weight": 0.0, "imd_weight": 0.0,
        "cmrd_weight": 0.0, "cmkd_weight": 0.0, "response_cls_weight": 0.0,
        "response_box_weight": 0.0, "response_dir_weight": 0.0}
ONLY = {
    "imd": {"imd_weight": 1.0}, "cmkd": {"cmkd_weight": 1.0}, "cmrd": {"cmrd_weight": 1.0},
    "depth": {"depth_weight": 1.0}, "detection": {"detection": DetectionLossWeights()},
    "resp_cls": {"response_cls_weight": 1.0}, "resp_box": {"response_box_weight": 1.0},
    "resp_dir": {"response_dir_weight": 1.0},
}


def _scene(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> dict[str, object]:
    """Synthetic inputs: images, camera, a depth map, LiDAR points and one car per frame."""
    g = torch.Generator().manual_seed(seed)
    h, w = cfg.image.input_hw
    P2 = torch.tensor([[80.0, 0.0, w / 2, 0.0], [0.0, 80.0, h / 2, 0.0], [0.0, 0.0, 1.0, 0.0]])
    returns = 2.0 + 12.0 * torch.rand(batch, h, w, generator=g)
    depth = torch.where(torch.rand(batch, h, w, generator=g) < 0.3, returns, 0.0)
    points = [torch.rand(400, 4, generator=g) * torch.tensor([12.0, 12.0, 4.0, 1.0])
              + torch.tensor([2.5, -6.0, -3.0, 0.0]) for _ in range(batch)]
    boxes = [torch.tensor([[6.0 + 2 * i, 1.0 - i, -1.0, 3.9, 1.6, 1.56, 0.2]])
             for i in range(batch)]
    return {"images": torch.randn(batch, 3, h, w, generator=g),
            "P2": P2.expand(batch, 3, 4).clone(),
            "T": torch.tensor(T_RECT_FROM_LIDAR, dtype=torch.float32).expand(batch, 4, 4).clone(),
            "depth": depth, "points": points, "boxes": boxes,
            "classes": [torch.tensor([0]) for _ in range(batch)]}


def _group_has_grad(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters())


@pytest.mark.parametrize("term", sorted(ROUTES))
def test_each_term_alone_trains_exactly_its_student_modules(term: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    student, ta, teacher = build_student(cfg), build_assistant(cfg), build_teacher(cfg)
    # Teacher and TA are deliberately NOT frozen: the losses must detach their outputs.
    with torch.no_grad():
        teacher.head.cls.bias.zero_()  # teacher score 0.5 everywhere: response terms active
    s = _scene(cfg)
    t_out = teacher(s["points"])
    ta_out = ta(s["images"], s["P2"], s["T"], s["depth"])
    s_out = student(s["images"], s["P2"], s["T"])
    targets = assign_targets(student.head.anchors, student.head.anchor_classes, s["boxes"],
                             s["classes"], cfg.head)
    assert int(targets.positives.sum()) > 0
    loss_cfg = DistillConfig(**{**ZERO, **ONLY[term]})
    terms = student_losses(loss_cfg, s_out, targets=targets, teacher=t_out, assistant=ta_out,
                           depth_maps=s["depth"], depth_bins=cfg.depth)
    terms.total.backward()
    trained = {name for name in STUDENT_GROUPS if _group_has_grad(getattr(student, name))}
    assert trained == ROUTES[term]
    for frozen_model in (teacher, ta):
        assert all(p.grad is None for p in frozen_model.parameters())


def test_published_modules_sit_where_the_terms_expect_them() -> None:
    """SCNet refines F_S (trained by IMD, not by CMRD); SAM is trained by CMRD, not by IMD."""
    torch.manual_seed(0)
    cfg = tiny_config(scnet=ScnetConfig(blocks=1, pooling=2),
                      spatial_cue=SpatialCueConfig(aspp_rates=(2,), se_reduction=4,
                                                   alignment="sam"), fusion_style="ffm")
    student, ta, teacher = build_student(cfg), freeze(build_assistant(cfg)), build_teacher(cfg)
    s = _scene(cfg)
    with torch.no_grad():
        t_out = teacher(s["points"])
        ta_out = ta(s["images"], s["P2"], s["T"], s["depth"])
    for term, trains, spares in (("imd", "scnet", "spatial_cue"),
                                 ("cmrd", "spatial_cue", "scnet")):
        student.zero_grad(set_to_none=True)
        out = student(s["images"], s["P2"], s["T"])
        loss_cfg = DistillConfig(**{**ZERO, **ONLY[term], "cmrd_threshold_ratio": 0.0})
        student_losses(loss_cfg, out, teacher=t_out, assistant=ta_out).total.backward()
        assert _group_has_grad(getattr(student, trains)), term
        assert not _group_has_grad(getattr(student, spares)), term


def test_missing_targets_for_enabled_terms_are_config_errors() -> None:
    cfg = tiny_config()
    student = build_student(cfg)
    s = _scene(cfg, batch=1)
    out = student(s["images"], s["P2"])
    with pytest.raises(ConfigError, match="need the TA"):
        student_losses(distill_preset("imd"), out)
    with pytest.raises(ConfigError, match="need the teacher"):
        student_losses(distill_preset("cmkd"), out)
    with pytest.raises(ConfigError, match="depth_weight"):
        student_losses(distill_preset("none", depth_weight=1.0), out)
    with pytest.raises(ValueError, match="no loss term"):
        _ = LossTerms().total


# ---------------------------------------------------------------- tiny overfit


def test_full_takd_student_overfits_two_frames() -> None:
    """Frozen random teacher/TA, two labelled frames: every term together must drop a lot."""
    torch.manual_seed(0)
    cfg = tiny_config()
    student = build_student(cfg)
    teacher, ta = freeze(build_teacher(cfg)), freeze(build_assistant(cfg))
    s = _scene(cfg, seed=1)
    with torch.no_grad():
        t_out = teacher(s["points"])
        ta_out = ta(s["images"], s["P2"], s["T"], s["depth"])
    targets = assign_targets(student.head.anchors, student.head.anchor_classes, s["boxes"],
                             s["classes"], cfg.head)
    loss_cfg = distill_preset("takd", depth_weight=0.5)
    optimiser = torch.optim.AdamW(student.parameters(), lr=3e-3, weight_decay=0.0)
    history = []
    for _ in range(60):
        out = student(s["images"], s["P2"], s["T"])
        terms = student_losses(loss_cfg, out, targets=targets, teacher=t_out, assistant=ta_out,
                               depth_maps=s["depth"], depth_bins=cfg.depth)
        optimiser.zero_grad()
        terms.total.backward()
        optimiser.step()
        history.append(terms.scalars())
    first, last = history[0], history[-1]
    assert np.isfinite(last["total"])
    assert last["total"] < 0.4 * first["total"]
    for name in ("det_cls", "det_box", "det_dir", "imd", "depth"):
        assert last[name] < 0.7 * first[name], (name, first[name], last[name])
    # R is sparse (< 1 % of entries non-zero): CMRD first has to learn silence, so it falls slowly
    assert last["cmrd"] < 0.9 * first["cmrd"]

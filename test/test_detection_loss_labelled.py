"""The GT detection loss is averaged over the labelled frames of a batch only."""

from __future__ import annotations

import torch
from helpers_models import tiny_config

from monotakd_ros.distill.config import DetectionLossWeights
from monotakd_ros.models import build_student
from monotakd_ros.models.detection_loss import (
    detection_loss,
    residual_difference,
    sigmoid_focal_loss,
    smooth_l1,
)
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.models.target_assigner import AnchorTargets, assign_targets

WEIGHTS = DetectionLossWeights()


def _anchors() -> tuple[torch.Tensor, torch.Tensor, object]:
    cfg = tiny_config()
    head = build_student(cfg).head
    return head.anchors, head.anchor_classes, cfg.head


def _frames(count: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``count`` frames of 1-2 cars (class 0) inside the tiny grid."""
    generator = torch.Generator().manual_seed(seed)
    boxes, classes = [], []
    for _ in range(count):
        cars = int(torch.randint(1, 3, (1,), generator=generator))
        xy = torch.rand(cars, 2, generator=generator) * torch.tensor([8.0, 8.0]) + torch.tensor(
            [4.0, -4.0])
        size = torch.tensor([3.9, 1.6, 1.56]).expand(cars, 3)
        z = torch.full((cars, 1), -0.9)
        yaw = torch.rand(cars, 1, generator=generator) * 3.0
        boxes.append(torch.cat([xy, z, size, yaw], dim=1))
        classes.append(torch.zeros(cars, dtype=torch.long))
    return boxes, classes


def _head(batch: int, anchors: int, classes: int, seed: int) -> HeadOutput:
    generator = torch.Generator().manual_seed(seed)
    return HeadOutput(cls_logits=torch.randn(batch, anchors, classes, generator=generator),
                      box_residuals=0.3 * torch.randn(batch, anchors, 7, generator=generator),
                      dir_logits=torch.randn(batch, anchors, 2, generator=generator))


def _rows(head: HeadOutput, rows: list[int]) -> HeadOutput:
    return HeadOutput(cls_logits=head.cls_logits[rows], box_residuals=head.box_residuals[rows],
                      dir_logits=head.dir_logits[rows])


def _batch_mean_reference(head: HeadOutput, targets: AnchorTargets) -> list[float]:
    """The SECOND normalisation written out per frame: mean over frames of per-frame sums."""
    per_frame = []
    for i in range(head.cls_logits.shape[0]):
        labels = targets.labels[i]
        positives = (labels > 0).float()
        norm = positives.sum().clamp(min=1.0)
        one_hot = torch.nn.functional.one_hot(labels.clamp(min=0),
                                              head.cls_logits.shape[-1] + 1)[:, 1:].float()
        focal = sigmoid_focal_loss(head.cls_logits[i], one_hot).sum(-1) * (labels >= 0).float()
        diff = residual_difference(head.box_residuals[i], targets.box_residuals[i])
        box = smooth_l1(diff, WEIGHTS.smooth_l1_beta).sum(-1) * positives
        ce = torch.nn.functional.cross_entropy(head.dir_logits[i], targets.dir_bins[i],
                                               reduction="none") * positives
        per_frame.append([float(focal.sum() / norm), float(box.sum() / norm),
                          float(ce.sum() / norm)])
    return [sum(values) / len(per_frame) for values in zip(*per_frame, strict=True)]


def _terms(head: HeadOutput, targets: AnchorTargets) -> list[float]:
    terms = detection_loss(head, targets, WEIGHTS)
    return [float(terms.cls), float(terms.box), float(terms.dir)]


def test_unlabelled_frames_do_not_dilute_the_gt_terms() -> None:
    anchors, anchor_classes, head_cfg = _anchors()
    boxes, classes = _frames(4, seed=3)
    head = _head(4, anchors.shape[0], len(head_cfg.class_names), seed=5)
    # frames 0 and 2 labelled; 1 and 3 carry boxes too, but their labels are hidden
    has_labels = torch.tensor([True, False, True, False])
    mixed = assign_targets(anchors, anchor_classes, boxes, classes, head_cfg, has_labels)
    alone = assign_targets(anchors, anchor_classes, [boxes[0], boxes[2]],
                           [classes[0], classes[2]], head_cfg)
    mixed_terms = _terms(head, mixed)
    alone_terms = _terms(_rows(head, [0, 2]), alone)
    for a, b in zip(mixed_terms, alone_terms, strict=True):
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b))
    assert min(alone_terms) > 0.05  # the frames have positives: a real comparison
    # the old normalisation by the whole batch would have halved every term
    halved = [t / 2 for t in alone_terms]
    assert all(abs(a - h) > 0.01 for a, h in zip(mixed_terms, halved, strict=True))


def test_fully_labelled_batches_keep_the_batch_mean() -> None:
    anchors, anchor_classes, head_cfg = _anchors()
    boxes, classes = _frames(3, seed=11)
    head = _head(3, anchors.shape[0], len(head_cfg.class_names), seed=13)
    flagged = assign_targets(anchors, anchor_classes, boxes, classes, head_cfg,
                             torch.ones(3, dtype=torch.bool))
    unflagged = AnchorTargets(labels=flagged.labels, box_residuals=flagged.box_residuals,
                              dir_bins=flagged.dir_bins)  # labelled None: every frame
    reference = _batch_mean_reference(head, flagged)
    for terms in (_terms(head, flagged), _terms(head, unflagged)):
        for got, want in zip(terms, reference, strict=True):
            assert abs(got - want) <= 1e-6 * max(1.0, abs(want))


def test_a_batch_without_labels_gives_exactly_zero_and_finite_gradients() -> None:
    anchors, anchor_classes, head_cfg = _anchors()
    boxes, classes = _frames(2, seed=17)
    head = _head(2, anchors.shape[0], len(head_cfg.class_names), seed=19)
    head.cls_logits.requires_grad_(True)
    targets = assign_targets(anchors, anchor_classes, boxes, classes, head_cfg,
                             torch.zeros(2, dtype=torch.bool))
    terms = detection_loss(head, targets, WEIGHTS)
    assert [float(t.detach()) for t in (terms.cls, terms.box, terms.dir)] == [0.0, 0.0, 0.0]
    (terms.cls + terms.box + terms.dir).backward()
    assert head.cls_logits.grad is not None
    assert torch.equal(head.cls_logits.grad, torch.zeros_like(head.cls_logits))

"""The fast decode gives the detections of the straightforward per-class, full-matrix decode."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monotakd_ros.data.batch import prepare_image
from monotakd_ros.data.synth.generator import generate_object_frame
from monotakd_ros.inference import StudentPredictor
from monotakd_ros.models.outputs import Detections, HeadOutput
from monotakd_ros.models.postprocess import candidate_anchors, detections_from_head

sys.path.insert(0, str(Path(__file__).parent))
from helpers_detector import KITTI_P2, road_image  # noqa: E402
from helpers_postprocess import reference_frame_detections  # noqa: E402


@pytest.fixture(scope="module")
def shipped() -> StudentPredictor:
    return StudentPredictor.from_checkpoint(Path(__file__).parents[1] / "models/default_student",
                                            device="cpu")


@pytest.fixture(scope="module")
def shipped_heads(shipped: StudentPredictor) -> list[HeadOutput]:
    """Head outputs of the shipped student on three synthetic KITTI frames and a road image."""
    frames = [generate_object_frame(7, index) for index in range(3)]
    inputs = [(f.image_bgr, f.calib.P2) for f in frames] + [(road_image(0), KITTI_P2)]
    model = shipped._loaded_model()
    heads = []
    for image_bgr, P2 in inputs:
        image, P_input, _ = prepare_image(image_bgr, P2, shipped.spec)
        with torch.inference_mode():
            heads.append(model(image[None], torch.as_tensor(P_input, dtype=torch.float32)[None])
                         .head)
    return heads


def assert_same_detections(fast: Detections, reference: Detections) -> None:
    assert fast.classes.tolist() == reference.classes.tolist()
    torch.testing.assert_close(fast.scores, reference.scores, rtol=0.0, atol=1e-5)
    torch.testing.assert_close(fast.boxes_lidar, reference.boxes_lidar, rtol=0.0, atol=1e-5)


@pytest.mark.parametrize("score_threshold", [0.3, 0.1])
def test_shipped_student_frames_match_the_reference(shipped: StudentPredictor,
                                                    shipped_heads: list[HeadOutput],
                                                    score_threshold: float) -> None:
    # 0.3: the node's default; 0.1: the checkpoint's (its 300-candidate cap is reached).
    cfg = dataclasses.replace(shipped.postprocess, score_threshold=score_threshold)
    anchors = shipped._loaded_model().head.anchors
    found, suppressed = 0, 0
    for head in shipped_heads:
        (fast,) = detections_from_head(head, anchors, shipped.model_cfg.head, cfg)
        reference = reference_frame_detections(head, anchors, shipped.model_cfg.head, cfg)
        assert_same_detections(fast, reference)
        found += len(fast)
        above = int((torch.sigmoid(head.cls_logits[0]) > score_threshold).sum())
        suppressed += above - len(fast)
    expected_min = {0.3: 5, 0.1: 60}[score_threshold]
    assert found >= expected_min and suppressed > found  # real boxes, and NMS really worked


def crowded_head(anchors: torch.Tensor, seed: int) -> HeadOutput:
    """Random logits, residuals and directions: every class crowded, boxes of all yaws."""
    generator = torch.Generator().manual_seed(seed)
    count = anchors.shape[0]
    return HeadOutput(cls_logits=torch.randn(1, count, 3, generator=generator) * 2.0 - 1.0,
                      box_residuals=torch.randn(1, count, 7, generator=generator) * 0.3,
                      dir_logits=torch.randn(1, count, 2, generator=generator))


@pytest.mark.parametrize(("nms_iou", "max_detections"), [(0.1, 100), (0.5, 40)])
def test_crowded_random_heads_match_the_reference(shipped: StudentPredictor, nms_iou: float,
                                                  max_detections: int) -> None:
    anchors = shipped._loaded_model().head.anchors
    cfg = dataclasses.replace(shipped.postprocess, score_threshold=0.2, pre_nms_max=150,
                              nms_iou_threshold=nms_iou, max_detections=max_detections)
    head = crowded_head(anchors, seed=int(nms_iou * 10))
    (fast,) = detections_from_head(head, anchors, shipped.model_cfg.head, cfg)
    reference = reference_frame_detections(head, anchors, shipped.model_cfg.head, cfg)
    assert_same_detections(fast, reference)
    assert set(fast.classes.tolist()) == {0, 1, 2}
    assert 20 <= len(fast) <= max_detections


def test_candidates_cap_each_class_at_its_best_scores() -> None:
    scores = torch.tensor([[0.9, 0.05], [0.2, 0.6], [0.7, 0.8], [0.4, 0.01], [0.05, 0.3]])
    anchor_idx, class_idx = candidate_anchors(scores, score_threshold=0.1, pre_nms_max=2)
    pairs = sorted(zip(class_idx.tolist(), anchor_idx.tolist(), strict=True))
    # class 0 has 4 above 0.1 -> its best two (anchors 0, 2); class 1 has 3 -> anchors 2, 1
    assert pairs == [(0, 0), (0, 2), (1, 1), (1, 2)]
    anchor_idx, class_idx = candidate_anchors(scores, score_threshold=0.1, pre_nms_max=5)
    assert list(zip(anchor_idx.tolist(), class_idx.tolist(), strict=True)) == [
        (0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (4, 1)]  # anchor order when uncapped
    empty = candidate_anchors(scores, score_threshold=0.95, pre_nms_max=5)
    assert empty[0].numel() == 0 and empty[1].numel() == 0


def test_an_empty_frame_gives_typed_empty_detections(shipped: StudentPredictor) -> None:
    anchors = shipped._loaded_model().head.anchors
    head = crowded_head(anchors, seed=0)
    head.cls_logits.fill_(-10.0)
    (fast,) = detections_from_head(head, anchors, shipped.model_cfg.head, shipped.postprocess)
    assert fast.boxes_lidar.shape == (0, 7) and fast.classes.dtype == torch.long
    assert np.asarray(fast.scores).shape == (0,)

"""monotakd-export --format onnx: the trained shipped student under onnxruntime vs PyTorch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from monotakd_ros.inference import StudentPredictor
from monotakd_ros.inference.onnx_export import (
    MIN_OPSET,
    example_inputs,
    export_parity,
    main,
    onnx_head_output,
    onnx_session,
)
from monotakd_ros.inference.parity import (
    BOX_TOLERANCE_M,
    check_onnx_matches_torch,
    synthetic_val_frames,
)
from monotakd_ros.inference.planar_lifting import PlanarFrustumToVoxel
from monotakd_ros.resources import default_model_path

SHIPPED = default_model_path()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "student.onnx"
    assert main(["--format", "onnx", "--out", str(out)]) == 0
    return out


def test_export_is_a_valid_opset_20_graph_with_the_input_spec(exported: Path) -> None:
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == MIN_OPSET
    ops = {node.op_type for node in model.graph.node}
    assert "GridSample" in ops  # the frustum lifting, exported as one 5-D op
    assert [i.name for i in model.graph.input] == ["images", "P2"]
    meta = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(meta["monotakd.input_spec"])
    assert spec["input_hw"] == [192, 640]
    assert json.loads(meta["monotakd.class_names"]) == ["Car", "Pedestrian", "Cyclist"]


def test_raw_head_outputs_match_pytorch(exported: Path) -> None:
    errors = export_parity(SHIPPED, exported)
    assert set(errors) == {"cls_logits", "box_residuals", "dir_logits"}
    assert max(errors.values()) < 1e-3  # float32 kernels in another order
    # A different P2 moves every voxel: the graph must not have frozen the traced camera.
    predictor = StudentPredictor.from_checkpoint(SHIPPED, device="cpu", network_path="eager")
    images, P2 = example_inputs(predictor)
    moved = P2.clone()
    moved[0, 0, 2] += 40.0
    with torch.inference_mode():
        reference = predictor.model(images, moved).head
    got = onnx_head_output(onnx_session(exported), images.numpy(), moved.numpy())
    assert float((reference.cls_logits - got.cls_logits).abs().max()) < 1e-3
    unmoved = onnx_head_output(onnx_session(exported), images.numpy(), P2.numpy())
    assert float((unmoved.cls_logits - got.cls_logits).abs().max()) > 0.01


def test_decoded_boxes_and_scores_match_on_synthetic_frames(exported: Path) -> None:
    frames = synthetic_val_frames(2)
    result = check_onnx_matches_torch(SHIPPED, exported, frames, score_threshold=0.2)
    assert result["compared"] >= 2  # the trained student finds cars there
    assert result["unmatched"] == 0
    assert result["max_box_error_m"] <= BOX_TOLERANCE_M
    assert result["max_score_error"] <= 1e-3 and result["passed"] is True


def test_bad_requests_exit_2_naming_the_problem(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "a.onnx"), "--opset", "17"]) == 2
    assert "opset: 17 is too old" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert main(["--model", str(missing), "--out", str(tmp_path / "b.onnx")]) == 2
    assert re.search(re.escape(str(missing)) + ".*not found", capsys.readouterr().err)
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()
    with pytest.raises(SystemExit):
        main(["--format", "tensorrt", "--out", str(tmp_path / "c.plan")])


def test_onnx_runtime_frames_are_not_trivially_equal() -> None:
    # The parity check must be able to fail: a perturbed head moves boxes beyond tolerance.
    frames = synthetic_val_frames(1)
    predictor = StudentPredictor.from_checkpoint(SHIPPED, device="cpu", score_threshold=0.2,
                                                 network_path="eager")
    reference = predictor.predict(frames[0].image_bgr, frames[0].P2)
    model = predictor.model

    def shifted(images: torch.Tensor, P2: torch.Tensor):  # noqa: ANN202
        head = model(images, P2).head
        head.box_residuals[..., 0] += 0.01  # 1 % of an anchor diagonal, ~4 cm for a car
        return head

    predictor.set_network(lambda images, P2: shifted(images, P2))
    with torch.inference_mode():
        moved = predictor.predict(frames[0].image_bgr, frames[0].P2)
    assert len(reference) > 0
    errors = np.abs(moved.boxes_cam[:, :3] - reference.boxes_cam[:, :3]).max()
    assert errors > BOX_TOLERANCE_M


def test_planar_lifting_equals_the_volumetric_one() -> None:
    # Random frustum over the shipped grid; the planar variant must reproduce the 5-D sample,
    # including voxels behind the camera, beyond the last bin and above/below the image.
    predictor = StudentPredictor.from_checkpoint(SHIPPED, device="cpu", network_path="eager")
    volumetric = predictor.model.to_voxels
    planar = PlanarFrustumToVoxel(volumetric)
    _, P2 = example_inputs(predictor)
    T = predictor.model.nominal_T_rect_from_lidar[None]
    frustum = torch.rand(1, 3, 48, 24, 80, generator=torch.Generator().manual_seed(1))
    for shift in (0.0, 200.0):  # 200 px up: most voxels leave the image vertically
        moved = P2.clone()
        moved[0, 1, 2] -= shift
        expected = volumetric(frustum, moved, T, (192, 640))
        got = planar(frustum, moved, T, (192, 640))
        assert 0.005 < float((expected != 0).float().mean()) < 0.9  # both kinds of voxel
        # float32 row indices up to ~1250: about 1e-4 px of position rounding
        assert float((expected - got).abs().max()) < 5e-4


def test_planar_export_has_only_4d_grid_samples_and_matches(tmp_path: Path) -> None:
    out = tmp_path / "planar.onnx"
    assert main(["--out", str(out), "--lifting", "planar", "--opset", "17"]) == 0
    model = onnx.load(str(out))
    samples = [n for n in model.graph.node if n.op_type == "GridSample"]
    assert len(samples) == 2
    shapes = onnx.shape_inference.infer_shapes(model).graph.value_info
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in shapes}
    assert all(ranks.get(n.input[0]) == 4 for n in samples)
    assert max(export_parity(SHIPPED, out).values()) < 1e-3

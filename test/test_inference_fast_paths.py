"""Fast network paths: parsing, half weights, warm-up and the fall-back to eager (CPU parts)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_detector import KITTI_P2, LOW_SCORE, road_image, write_test_checkpoint

from monotakd_ros.data.synth.generator import generate_object_frame
from monotakd_ros.errors import ConfigError
from monotakd_ros.inference import StudentPredictor
from monotakd_ros.inference.fast_paths import (
    NetworkPath,
    NetworkRunner,
    build_network_runner,
    convert_weights_to_half,
    network_parity,
    parity_passes,
    parse_network_path,
)
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.resources import default_model_path

LOGGER = "monotakd_ros.inference.fast_paths"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("model") / "student")


def fresh_model(checkpoint: Path) -> torch.nn.Module:
    return StudentPredictor.from_checkpoint(checkpoint, device="cpu", network_path="eager").model


@pytest.mark.parametrize(("text", "path"), [
    ("eager", NetworkPath()),
    ("half", NetworkPath(half=True)),
    (" Half+CUDA_graph ", NetworkPath(half=True, cuda_graph=True)),
    ("compile+cuda_graph", NetworkPath(compile=True, cuda_graph=True)),
    ("Freeze", NetworkPath(freeze=True)),
    ("auto", None),
])
def test_network_paths_parse_and_name_themselves(text: str, path: NetworkPath | None) -> None:
    assert parse_network_path(text) == path
    if path is not None:
        assert parse_network_path(path.name) == path


@pytest.mark.parametrize("text", ["fast", "half+half", "half+", "tensorrt", "half+freeze"])
def test_unknown_network_paths_name_the_parameter(text: str) -> None:
    with pytest.raises(ConfigError, match="network_path: .*got '" + re.escape(text)):
        parse_network_path(text)


def test_half_weights_leave_geometry_and_batchnorm_in_float32(checkpoint: Path) -> None:
    model = convert_weights_to_half(fresh_model(checkpoint))
    conv_weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert conv_weights and all(w.dtype == torch.float16 for w in conv_weights)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.weight.dtype == m.running_var.dtype == torch.float32 for m in norms)
    # Anchors and voxel centres at 46 m would move by centimetres in float16.
    assert model.head.anchors.dtype == torch.float32
    assert model.to_voxels.centres_lidar.dtype == torch.float32


@pytest.fixture(scope="module")
def eager_output(checkpoint: Path) -> HeadOutput:
    eager = NetworkRunner(fresh_model(checkpoint), torch.device("cpu"), NetworkPath(), False,
                          (96, 320))
    return eager(*eager.example_inputs())


def test_half_path_agrees_with_float32_eager(checkpoint: Path, eager_output: HeadOutput) -> None:
    half = NetworkRunner(fresh_model(checkpoint), torch.device("cpu"), NetworkPath(half=True),
                         False, (96, 320))
    assert half.path == NetworkPath(half=True) and half.autocast
    score_error, residual_error = network_parity(eager_output, half(*half.example_inputs()))
    assert 0.0 < score_error <= 0.02 and 0.0 < residual_error <= 0.05  # fp16, not a no-op
    assert parity_passes(score_error, residual_error)


def test_a_compile_failure_falls_back_to_eager_with_one_warning(
        checkpoint: Path, eager_output: HeadOutput, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken_compile(*args: object, **kwargs: object) -> object:
        def compiled(*a: object, **k: object) -> object:
            raise RuntimeError("inductor: no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        runner = NetworkRunner(fresh_model(checkpoint), torch.device("cpu"),
                               NetworkPath(compile=True), False, (96, 320))
        output = runner(*runner.example_inputs())
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()
    assert "falling back to eager" in warnings[0].getMessage()
    assert runner.path == NetworkPath()
    assert network_parity(eager_output, output) == (0.0, 0.0)


def test_a_cuda_graph_on_the_cpu_keeps_the_predictor_alive(
        checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    image = road_image(0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        graphed = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                                   network_path="cuda_graph",
                                                   score_threshold=LOW_SCORE)
    assert graphed.network_path == "eager"
    assert sum("CUDA graphs need a CUDA device" in r.getMessage()
               for r in caplog.records) == 1
    eager = StudentPredictor.from_checkpoint(checkpoint, device="cpu", network_path="eager",
                                             score_threshold=LOW_SCORE)
    boxes = graphed.predict(image, KITTI_P2).boxes_cam
    assert len(boxes) > 0
    np.testing.assert_array_equal(boxes, eager.predict(image, KITTI_P2).boxes_cam)


def test_auto_is_the_frozen_network_on_the_cpu_and_agrees_with_eager(
        checkpoint: Path, eager_output: HeadOutput) -> None:
    runner = build_network_runner(fresh_model(checkpoint), torch.device("cpu"), "auto", False,
                                  (96, 320))
    assert runner.path == NetworkPath(freeze=True) and not runner.autocast
    score_error, residual_error = network_parity(eager_output, runner(*runner.example_inputs()))
    assert score_error <= 1e-5 and residual_error <= 1e-4  # float32 both: rounding only
    with pytest.raises(ConfigError, match="network_path"):
        StudentPredictor.from_checkpoint(checkpoint, device="cpu", network_path="warp")


def test_the_frozen_network_runs_other_input_sizes_eagerly(checkpoint: Path) -> None:
    """Tracing fixes the input size: another size must not reuse the traced shapes."""
    model = fresh_model(checkpoint)
    frozen = NetworkRunner(model, torch.device("cpu"), NetworkPath(freeze=True), False, (96, 320))
    eager = NetworkRunner(model, torch.device("cpu"), NetworkPath(), False, (64, 224))
    images, P2 = eager.example_inputs()
    assert network_parity(eager(images, P2), frozen(images, P2)) == (0.0, 0.0)


def test_a_trace_failure_falls_back_to_eager(checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken_trace(*args: object, **kwargs: object) -> object:
        raise RuntimeError("tracer: unsupported op")

    monkeypatch.setattr(torch.jit, "trace", broken_trace)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        runner = build_network_runner(fresh_model(checkpoint), torch.device("cpu"), "auto",
                                      False, (96, 320))
    assert runner.path == NetworkPath()
    assert sum("unsupported op" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("threads", [1, 2])
def test_frozen_predictions_equal_eager_ones(threads: int) -> None:
    """The shipped student on a synthetic frame: same boxes and scores as eager.

    A random student's scores all sit at the prior (0.01), so rounding alone reorders them;
    the trained one separates objects from background, as in use.
    """
    frame = generate_object_frame(seed=3, index=0)
    P2 = frame.calib.P2
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        frozen, eager = (StudentPredictor.from_checkpoint(default_model_path(), device="cpu",
                                                          network_path=path)
                         for path in ("freeze", "eager"))
        got, want = frozen.predict(frame.image_bgr, P2), eager.predict(frame.image_bgr, P2)
    finally:
        torch.set_num_threads(before)
    assert frozen.network_path == "freeze" and eager.network_path == "eager"
    assert len(want) >= 3 and got.class_names == want.class_names
    np.testing.assert_allclose(got.boxes_cam, want.boxes_cam, atol=1e-4)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_released_predictor_drops_its_runner(checkpoint: Path) -> None:
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu")
    predictor.release()
    with pytest.raises(RuntimeError, match="released"):
        predictor.predict(np.zeros((375, 1242, 3), np.uint8), KITTI_P2)

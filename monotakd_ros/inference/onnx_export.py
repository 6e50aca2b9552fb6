"""ONNX export of a student checkpoint: ``monotakd-export --format onnx``.

The exported graph is the network only: normalised images (1, 3, H, W) and P2 (1, 3, 4) at the
network input in, the anchor head's ``cls_logits`` (1, A, C), ``box_residuals`` (1, A, 7) and
``dir_logits`` (1, A, 2) out. Image preparation and decoding (score threshold, rotated NMS, the
LiDAR -> camera mapping) stay in Python (``StudentPredictor``), so an ONNX runtime only replaces
the forward pass. The lifting op samples the 5-D frustum (B, C, D, h, w) with ``grid_sample``;
ONNX ``GridSample`` accepts N-D inputs from opset 20 on, hence ``MIN_OPSET``. ``--lifting
planar`` exports the same numbers with 4-D GridSample only (``planar_lifting``, opset >= 16),
for TensorRT, whose GridSample is 4-D only. P2 is an input, so one file serves every camera.
The checkpoint's ``input_spec`` and class names ride along as metadata (``monotakd.*`` keys).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from monotakd_ros.errors import ConfigError, MonotakdError
from monotakd_ros.inference.fast_paths import HeadTensors
from monotakd_ros.inference.planar_lifting import use_planar_lifting
from monotakd_ros.inference.predictor import StudentPredictor
from monotakd_ros.models.outputs import HeadOutput
from monotakd_ros.resources import default_model_path

logger = logging.getLogger(__name__)

MIN_OPSET = 20  # ONNX GridSample over volumetric (5-D) inputs exists from opset 20
PLANAR_MIN_OPSET = 16  # 4-D GridSample
LIFTINGS = ("volumetric", "planar")
INPUT_NAMES = ("images", "P2")
OUTPUT_NAMES = ("cls_logits", "box_residuals", "dir_logits")
FORMATS = ("onnx",)


def example_inputs(predictor: StudentPredictor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed noise image and KITTI's P2 fitted to the input width (the traced example)."""
    height, width = predictor.spec.input_hw
    images = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    scale = width / 1242.0
    P2 = torch.tensor([[[721.5377 * scale, 0.0, 609.5593 * scale, 44.85728 * scale],
                        [0.0, 721.5377 * scale, 172.854 * scale, 0.2163791 * scale],
                        [0.0, 0.0, 1.0, 0.002745884]]])
    return images, P2


def _onnx_module():  # noqa: ANN202 - the optional onnx package
    try:
        import onnx
    except ImportError as err:
        raise ConfigError("ONNX export needs the 'onnx' package (pip install onnx==1.23.2, "
                          "pinned in requirements.txt)") from err
    return onnx


def export_onnx(checkpoint: Path, out_path: Path, opset: int = MIN_OPSET,
                lifting: str = "volumetric") -> Path:
    """Write the checkpoint's network to ``out_path`` (.onnx); returns the path."""
    if lifting not in LIFTINGS:
        raise ConfigError(f"lifting: expected one of {list(LIFTINGS)}, got '{lifting}'")
    needed = MIN_OPSET if lifting == "volumetric" else PLANAR_MIN_OPSET
    if opset < needed:
        raise ConfigError(f"opset: {opset} is too old; the {lifting} frustum lifting needs "
                          f"opset >= {needed}")
    onnx = _onnx_module()
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu", network_path="eager")
    model = predictor.model if lifting == "volumetric" else use_planar_lifting(predictor.model)
    network = HeadTensors(model).eval()
    out_path = Path(out_path).expanduser()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of torch.export + onnxscript
        # (not pinned here); its tracer warns about the forward's shape checks.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(network, example_inputs(predictor), str(out_path), dynamo=False,
                          opset_version=opset, input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), do_constant_folding=True)
    model = onnx.load(str(out_path))
    onnx.checker.check_model(model)
    metadata = {
        "monotakd.input_spec": json.dumps(asdict(predictor.spec)),
        "monotakd.class_names": json.dumps(list(predictor.class_names)),
        "monotakd.checkpoint": str(Path(checkpoint).expanduser().resolve()),
        "monotakd.lifting": lifting,
    }
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out_path))
    logger.info("exported %s -> %s (opset %d, %s lifting)", checkpoint, out_path, opset,
                lifting)
    return out_path


def onnx_session(path: Path):  # noqa: ANN201 - onnxruntime.InferenceSession (optional package)
    """A CPU onnxruntime session of an exported file; ConfigError when onnxruntime is missing."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ConfigError("running an ONNX export needs 'onnxruntime' (pip install "
                          "onnxruntime==1.31.1, pinned in requirements.txt)") from err
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_head_output(session: object, images: np.ndarray, P2: np.ndarray) -> HeadOutput:
    """HeadOutput (torch, CPU) of an ONNX Runtime session on images (1, 3, H, W) and P2."""
    feeds = {"images": np.ascontiguousarray(images, np.float32),
             "P2": np.ascontiguousarray(P2, np.float32)}
    cls_logits, residuals, directions = session.run(list(OUTPUT_NAMES), feeds)  # type: ignore[attr-defined]
    return HeadOutput(cls_logits=torch.from_numpy(cls_logits),
                      box_residuals=torch.from_numpy(residuals),
                      dir_logits=torch.from_numpy(directions))


def export_parity(checkpoint: Path, onnx_path: Path) -> dict[str, float]:
    """Max |Δ| of each head output between PyTorch and onnxruntime on the example input."""
    predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu", network_path="eager")
    images, P2 = example_inputs(predictor)
    with torch.inference_mode():
        reference = predictor.model(images, P2).head
    exported = onnx_head_output(onnx_session(onnx_path), images.numpy(), P2.numpy())
    return {name: float((getattr(reference, name) - getattr(exported, name)).abs().max())
            for name in OUTPUT_NAMES}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``monotakd-export``."""
    parser = argparse.ArgumentParser(prog="monotakd-export", description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="export format")
    parser.add_argument("--model", type=Path, default=None,
                        help="student checkpoint (default: the shipped models/default_student)")
    parser.add_argument("--out", type=Path, required=True, help="output file, e.g. student.onnx")
    parser.add_argument("--opset", type=int, default=MIN_OPSET,
                        help=f"ONNX opset (>= {MIN_OPSET} for the 5-D GridSample)")
    parser.add_argument("--lifting", choices=LIFTINGS, default="volumetric",
                        help="planar: 4-D GridSample only (TensorRT), same numbers")
    parser.add_argument("--check", action="store_true",
                        help="compare onnxruntime with PyTorch on a noise image afterwards")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``monotakd-export``; 2 on bad input, with the reason on stderr."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    checkpoint = args.model if args.model is not None else default_model_path()
    try:
        path = export_onnx(checkpoint, args.out, args.opset, args.lifting)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, opset {args.opset})")
        if args.check:
            errors = export_parity(checkpoint, path)
            print("onnxruntime vs PyTorch, max |diff|: "
                  + ", ".join(f"{name} {value:.2e}" for name, value in errors.items()))
    except MonotakdError as err:
        print(f"monotakd-export: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

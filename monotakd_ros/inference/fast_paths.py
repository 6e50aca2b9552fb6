"""Fast network paths for inference: half weights, torch.compile, CUDA graphs, freezing.

A path is ``eager``, ``freeze`` or a ``+``-joined set of ``half``, ``compile`` and
``cuda_graph`` (for example ``half+cuda_graph``); ``compile+cuda_graph`` is
``torch.compile(mode="reduce-overhead")``. ``freeze`` traces the network once at the
checkpoint's input size and freezes it (TorchScript: constants folded, BatchNorm folded into the
convolutions, oneDNN layouts chosen for the CPU); it needs no compiler. ``auto`` on a GPU times
every path that needs no compiler and keeps the fastest whose head outputs agree with the
float32 eager network (``network_parity``); on the CPU it is ``freeze`` when that agrees, else
``eager`` (measured in docs/benchmarks.md: the frozen network is the faster one there).
A runner warms up (and captures its graph) when it is built, so the first frame is not slow;
a compile, capture or trace failure falls back to the same path without ``compile``,
``cuda_graph`` or ``freeze`` after one warning.

Half-precision weights convert only convolutions and linear layers: the anchor and voxel-centre
buffers and BatchNorm stay float32 (half would misplace a voxel 46 m away by 3 cm), and the
network runs under float16 autocast so the frustum sampling keeps its float32 grid.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from monotakd_ros.errors import ConfigError
from monotakd_ros.models.camera_detector import CameraBevDetector
from monotakd_ros.models.outputs import HeadOutput

logger = logging.getLogger(__name__)

OPTIONS = ("half", "compile", "cuda_graph")
FREEZE = "freeze"  # a path of its own, not combined with the options
AUTO = "auto"
AUTO_CANDIDATES = ("half+cuda_graph", "cuda_graph", "half", "eager")  # no compiler: fast configure
WARMUP_CALLS = 3
# Parity against the float32 eager network on the warm-up input. Scores are sigmoid
# probabilities; 0.02 is far below the 0.1-0.3 thresholds yet catches a broken kernel.
SCORE_TOLERANCE = 0.02
RESIDUAL_TOLERANCE = 0.05  # box residuals are offsets in anchor diagonals / log sizes

Network = Callable[[torch.Tensor, torch.Tensor], HeadOutput]


@dataclass(frozen=True)
class NetworkPath:
    """Which accelerations the network call uses."""

    half: bool = False
    compile: bool = False
    cuda_graph: bool = False
    freeze: bool = False

    @property
    def name(self) -> str:
        """``eager``, ``freeze`` or the options joined by ``+`` (the parameter's spelling)."""
        if self.freeze:
            return FREEZE
        used = [option for option in OPTIONS if getattr(self, option)]
        return "+".join(used) if used else "eager"

    def without_capture(self) -> NetworkPath:
        """The same precision, eager: what a failed compile or capture falls back to."""
        return NetworkPath(half=self.half)


def parse_network_path(text: str) -> NetworkPath | None:
    """NetworkPath of ``eager``/``half+cuda_graph``/...; None for ``auto``; ConfigError else."""
    name = str(text).strip().lower()
    if name == AUTO:
        return None
    if name == "eager":
        return NetworkPath()
    if name == FREEZE:
        return NetworkPath(freeze=True)
    options = [part.strip() for part in name.split("+")]
    unknown = [part for part in options if part not in OPTIONS]
    if unknown or len(set(options)) != len(options):
        raise ConfigError(f"network_path: expected '{AUTO}', 'eager', '{FREEZE}' or a "
                          f"'+'-joined set of {list(OPTIONS)}, got '{text}'")
    return NetworkPath(**{option: True for option in options})


def convert_weights_to_half(model: nn.Module) -> nn.Module:
    """Convolution and linear weights to float16 in place; buffers and BatchNorm stay float32."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            module.half()
    return model


class _GraphedNetwork:
    """The network captured in one CUDA graph on static input buffers; replay per call."""

    def __init__(self, forward: Network, images: torch.Tensor, P2: torch.Tensor) -> None:
        self.images, self.P2 = images.clone(), P2.clone()
        side = torch.cuda.Stream(device=images.device)
        side.wait_stream(torch.cuda.current_stream(images.device))
        with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
            for _ in range(WARMUP_CALLS):
                forward(self.images, self.P2)
        torch.cuda.current_stream(images.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = forward(self.images, self.P2)

    def __call__(self, images: torch.Tensor, P2: torch.Tensor) -> HeadOutput:
        """Head outputs in the graph's static tensors (valid until the next call)."""
        if images.shape != self.images.shape:
            raise ConfigError(f"cuda_graph: captured for input {tuple(self.images.shape)}, "
                              f"got {tuple(images.shape)}")
        self.images.copy_(images)
        self.P2.copy_(P2)
        self.graph.replay()
        return self.output


class _FrozenNetwork:
    """The network traced at one input size and frozen; other sizes run the eager network."""

    def __init__(self, model: nn.Module, eager: Network, images: torch.Tensor,
                 P2: torch.Tensor) -> None:
        self.eager = eager
        self.images_shape = images.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks: see guard
            # TorchScript is deprecated upstream; once removed, tracing fails and the runner
            # falls back to eager with one warning.
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(HeadTensors(model).eval(), (images, P2), check_trace=False)
            self.frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def __call__(self, images: torch.Tensor, P2: torch.Tensor) -> HeadOutput:
        if images.shape != self.images_shape:
            return self.eager(images, P2)
        cls_logits, box_residuals, dir_logits = self.frozen(images, P2)
        return HeadOutput(cls_logits=cls_logits, box_residuals=box_residuals,
                          dir_logits=dir_logits)


class HeadTensors(nn.Module):
    """The student as a graph of tensors: (images, P2) -> (cls, residual, direction) logits.

    Tracing (``freeze``) and ONNX export both need the head outputs as a tuple.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor,
                P2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        head = self.model(images, P2).head
        return head.cls_logits, head.box_residuals, head.dir_logits


class NetworkRunner:
    """``runner(images, P2)`` -> :class:`HeadOutput` through one :class:`NetworkPath`."""

    def __init__(self, model: CameraBevDetector, device: torch.device, path: NetworkPath,
                 fp16_autocast: bool, input_hw: tuple[int, int]) -> None:
        self.device = device
        self.path = path
        self.autocast = fp16_autocast or path.half
        self._model = convert_weights_to_half(model) if path.half else model
        self._input_hw = input_hw
        self._call = self._build(path)

    def __call__(self, images: torch.Tensor, P2: torch.Tensor) -> HeadOutput:
        """Head outputs of normalised images (B, 3, H, W) and P2 (B, 3, 4) on the device."""
        with torch.inference_mode():
            return self._call(images, P2)

    def example_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed noise image (1, 3, H, W) and a KITTI-like P2 at the input size."""
        height, width = self._input_hw
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(1, 3, height, width, generator=generator)
        scale = width / 1242.0  # KITTI's P2 (object calib 000000.txt) fitted to the input width
        P2 = torch.tensor([[[721.5377 * scale, 0.0, 609.5593 * scale, 44.85728 * scale],
                            [0.0, 721.5377 * scale, 172.854 * scale, 0.2163791 * scale],
                            [0.0, 0.0, 1.0, 0.002745884]]])
        return images.to(self.device), P2.to(self.device)

    def _eager(self, images: torch.Tensor, P2: torch.Tensor) -> HeadOutput:
        # Autocast's weight-cast cache must be off while a CUDA graph is captured (the cached
        # casts would live in the capture's memory pool); casting in the graph is replayed.
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast,
                            cache_enabled=not self.path.cuda_graph):
            return self._model(images, P2).head

    def _warmup_calls(self, path: NetworkPath) -> int:
        """CUDA: a few (lazy init, cuDNN autotuning); CPU: one to surface failures, or none."""
        if self.device.type == "cuda" or path.freeze:  # TorchScript optimises on later calls
            return WARMUP_CALLS
        return 0 if path == NetworkPath() else 1

    def _build(self, path: NetworkPath) -> Network:
        """The call for ``path``, warmed up; compile/capture failures fall back to eager."""
        call: Network = self._eager
        try:
            if path.compile:
                mode = "reduce-overhead" if path.cuda_graph else "default"
                call = torch.compile(self._eager, mode=mode, dynamic=False)
            with torch.inference_mode():
                images, P2 = self.example_inputs()
                if path.freeze:
                    call = _FrozenNetwork(self._model, self._eager, images, P2)
                if path.cuda_graph and not path.compile:
                    if self.device.type != "cuda":
                        raise RuntimeError(f"CUDA graphs need a CUDA device, not {self.device}")
                    call = _GraphedNetwork(self._eager, images, P2)
                for _ in range(self._warmup_calls(path)):
                    call(images, P2)
                synchronize(self.device)
        except Exception as err:  # noqa: BLE001 - any compiler/capture failure: stay alive
            fallback = path.without_capture()
            logger.warning("network_path %s failed on %s (%s: %s); falling back to %s",
                           path.name, self.device, type(err).__name__, err, fallback.name)
            self.path = fallback
            call = self._eager
            if self.device.type == "cuda":
                with torch.inference_mode():
                    call(*self.example_inputs())
        return call


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_call_ms(runner: NetworkRunner, repeats: int) -> float:
    """Median milliseconds of ``repeats`` runner calls on its example input."""
    images, P2 = runner.example_inputs()
    times = []
    for _ in range(repeats):
        synchronize(runner.device)
        start = time.perf_counter()
        runner(images, P2)
        synchronize(runner.device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def network_parity(reference: HeadOutput, candidate: HeadOutput) -> tuple[float, float]:
    """(max |Δ sigmoid score|, max |Δ box residual|) between two head outputs."""
    score = (torch.sigmoid(reference.cls_logits.float())
             - torch.sigmoid(candidate.cls_logits.float())).abs().max()
    residual = (reference.box_residuals.float() - candidate.box_residuals.float()).abs().max()
    return float(score), float(residual)


def parity_passes(score_error: float, residual_error: float) -> bool:
    """Whether a path's head outputs are close enough to float32 eager to be used."""
    return score_error <= SCORE_TOLERANCE and residual_error <= RESIDUAL_TOLERANCE


def build_network_runner(model: CameraBevDetector, device: torch.device, requested: str,
                         fp16_autocast: bool, input_hw: tuple[int, int]) -> NetworkRunner:
    """The runner for the ``network_path`` parameter (``auto`` measured here, at configure)."""
    path = parse_network_path(requested)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the input size is fixed by the checkpoint
    if path is not None:
        if path.half and device.type != "cuda":
            logger.warning("network_path %s on %s: float16 runs, but slowly (for checks only)",
                           path.name, device)
        return NetworkRunner(model, device, path, fp16_autocast, input_hw)
    if device.type != "cuda":
        return frozen_if_agreeing(model, device, fp16_autocast, input_hw)
    return fastest_passing_runner(model, device, input_hw)


def frozen_if_agreeing(model: CameraBevDetector, device: torch.device, fp16_autocast: bool,
                       input_hw: tuple[int, int]) -> NetworkRunner:
    """``freeze`` if it builds and its head outputs agree with eager's, else ``eager``."""
    eager = NetworkRunner(model, device, NetworkPath(), fp16_autocast, input_hw)
    frozen = NetworkRunner(model, device, NetworkPath(freeze=True), fp16_autocast, input_hw)
    if not frozen.path.freeze:  # tracing failed: warned, eager
        return eager
    with torch.inference_mode():
        inputs = eager.example_inputs()
        errors = network_parity(eager(*inputs), frozen(*inputs))
    if not parity_passes(*errors):
        logger.warning("network_path auto on %s: the frozen network disagrees with eager "
                       "(score Δ %.2g, residual Δ %.2g); using eager", device, *errors)
        return eager
    return frozen


def fastest_passing_runner(model: CameraBevDetector, device: torch.device,
                           input_hw: tuple[int, int], repeats: int = 20) -> NetworkRunner:
    """Times every ``AUTO_CANDIDATES`` path; keeps the fastest within parity of fp32 eager."""
    reference_runner = NetworkRunner(model, device, NetworkPath(), False, input_hw)
    reference = _cloned(reference_runner(*reference_runner.example_inputs()))
    best: tuple[float, NetworkRunner] = (median_call_ms(reference_runner, repeats),
                                         reference_runner)
    report = [f"eager {best[0]:.2f} ms"]
    for name in AUTO_CANDIDATES:
        path = parse_network_path(name)
        if path is None or path == NetworkPath():
            continue
        runner = NetworkRunner(copy.deepcopy(model) if path.half else model, device, path,
                               False, input_hw)
        if runner.path != path:  # fell back: already measured as another candidate
            continue
        errors = network_parity(reference, runner(*runner.example_inputs()))
        ms = median_call_ms(runner, repeats)
        passed = parity_passes(*errors)
        report.append(f"{path.name} {ms:.2f} ms (score Δ {errors[0]:.2g}, residual Δ "
                      f"{errors[1]:.2g}{'' if passed else ', FAILS parity'})")
        if passed and ms < best[0]:
            best = (ms, runner)
    logger.info("network_path auto on %s: %s -> %s", device, "; ".join(report),
                best[1].path.name)
    return best[1]


def _cloned(head: HeadOutput) -> HeadOutput:
    return HeadOutput(cls_logits=head.cls_logits.clone(), box_residuals=head.box_residuals.clone(),
                      dir_logits=head.dir_logits.clone())

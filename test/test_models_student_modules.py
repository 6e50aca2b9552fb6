"""Specification of the student's optional modules: deformable conv, SCNet, SAM and FFM."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers_models import camera_P2, tiny_config

from monotakd_ros.errors import ConfigError
from monotakd_ros.models import build_assistant, build_student
from monotakd_ros.models.config import ScnetConfig, SpatialCueConfig, load_model_config
from monotakd_ros.models.deform_conv import DeformConv2d, deform_conv2d, kernel_taps
from monotakd_ros.models.scnet import ScBottleneck, SelfCalibratedConv
from monotakd_ros.models.spatial_alignment import SpatialAlignmentModule

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "models"


def _bilinear_zero_padded(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """(C,) value of a (C, H, W) map at real (y, x), reading zeros outside (the obvious way)."""
    height, width = image.shape[1:]
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(image.shape[0], dtype=image.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value += wy * wx * image[:, yy, xx]
    return value


def _deform_conv_loop(x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor
                      ) -> torch.Tensor:
    """Per-pixel, per-tap reference of a deformable 3x3 conv (offset layout (dy, dx) per tap)."""
    batch, _, height, width = x.shape
    taps = kernel_taps(3).tolist()
    out = torch.zeros(batch, weight.shape[0], height, width, dtype=x.dtype)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                for k, (dy, dx) in enumerate(taps):
                    y = i + dy + float(offsets[b, 2 * k, i, j])
                    xx = j + dx + float(offsets[b, 2 * k + 1, i, j])
                    sample = _bilinear_zero_padded(x[b], y, xx)  # (C,)
                    out[b, :, i, j] += weight[:, :, k // 3, k % 3] @ sample
    return out


@pytest.mark.parametrize(("batch", "threads"), [(2, 1), (1, 2), (1, 3)])
def test_deformable_conv_matches_a_direct_loop(batch: int, threads: int) -> None:
    # One frame is sampled across threads (models/sampling.py); batches in one call.
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 5, 6, dtype=torch.float64)
    offsets = 1.5 * torch.randn(batch, 18, 5, 6, dtype=torch.float64)  # taps leave the map
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = deform_conv2d(x, offsets, weight)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(got, _deform_conv_loop(x, offsets, weight))


def test_zero_offsets_are_an_ordinary_convolution() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 5, 7, 4)
    weight, bias = torch.randn(6, 5, 3, 3), torch.randn(6)
    got = deform_conv2d(x, torch.zeros(2, 18, 7, 4), weight, bias)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, padding=1), atol=1e-5, rtol=1e-5)


def test_integer_offset_shifts_the_sampled_pixel() -> None:
    """Offset (0, +1) on every tap is a conv of the map shifted one column left."""
    x = torch.arange(20.0).view(1, 1, 4, 5)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0  # centre tap only
    offsets = torch.zeros(1, 18, 4, 5)
    offsets[:, 1::2] = 1.0  # dx = +1
    got = deform_conv2d(x, offsets, weight)[0, 0]
    expected = torch.cat([x[0, 0, :, 1:], torch.zeros(4, 1)], dim=1)
    torch.testing.assert_close(got, expected)


def test_deformable_module_starts_as_a_plain_conv_and_learns_offsets() -> None:
    torch.manual_seed(2)
    module = DeformConv2d(3, 4)
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(module(x), F.conv2d(x, module.weight, padding=1))
    module(x).square().sum().backward()
    assert module.offset.weight.grad is not None and module.offset.weight.grad.abs().sum() > 0


def test_self_calibrated_conv_equals_its_formula() -> None:
    torch.manual_seed(3)
    conv = SelfCalibratedConv(4, pooling=2).eval()
    x = torch.randn(1, 4, 6, 5)  # odd width: the pooled map is ceil-sized, then cut back
    context = conv.context(F.avg_pool2d(x, 2, ceil_mode=True))  # (1, 4, 3, 3)
    up = context.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[..., :6, :5]
    expected = conv.out(conv.value(x) * torch.sigmoid(x + up))
    torch.testing.assert_close(conv(x), expected)


def test_sc_bottleneck_is_residual() -> None:
    """With the expansion's BN scale at zero, a block returns relu(input) exactly."""
    torch.manual_seed(4)
    block = ScBottleneck(8, 4, pooling=2).eval()
    torch.nn.init.zeros_(block.expand[1].weight)
    torch.nn.init.zeros_(block.expand[1].bias)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), F.relu(x))
    torch.nn.init.ones_(block.expand[1].weight)
    assert (block(x) - F.relu(x)).abs().max() > 1e-3


def test_sam_adds_gated_input_and_deformable_path() -> None:
    torch.manual_seed(5)
    cfg = SpatialCueConfig(aspp_rates=(2,), se_reduction=4, alignment="sam", out_convs=0)
    sam = SpatialAlignmentModule(8, cfg).eval()
    x = torch.rand(1, 8, 6, 6)
    expected = x * sam.se.gate(sam.aspp(x)) + sam.deformable(x)
    torch.testing.assert_close(sam(x), expected)
    assert sum(isinstance(m, DeformConv2d) for m in sam.deformable) == 2


def test_modules_are_built_from_config_and_train() -> None:
    torch.manual_seed(6)
    cfg = tiny_config(scnet=ScnetConfig(blocks=2, reduction=4, pooling=2),
                      spatial_cue=SpatialCueConfig(aspp_rates=(2,), se_reduction=4,
                                                   alignment="sam"),
                      fusion_style="ffm")
    student, ta = build_student(cfg), build_assistant(cfg)
    names = {name.split(".")[0] for name, _ in student.named_parameters()}
    assert {"scnet", "spatial_cue", "fusion"} <= names
    assert len(student.scnet) == 2 and isinstance(student.spatial_cue, SpatialAlignmentModule)
    kernels = [m.kernel_size for m in student.fusion.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(3, 3), (1, 1), (3, 3)]
    assert ta.state_dict().keys() >= {k for k in student.state_dict() if k.startswith("scnet")}
    h, w = cfg.image.input_hw
    out = student(torch.randn(2, 3, h, w), camera_P2(80.0, (h, w)).expand(2, 3, 4))
    out.features.bev_visual.mean().backward()
    assert student.scnet[0].calibrated.context[0].weight.grad.abs().sum() > 0


def test_defaults_keep_the_first_release_architecture() -> None:
    """Configs without the new keys build the old modules (old checkpoints keep loading)."""
    student = build_student(tiny_config())
    assert isinstance(student.scnet, torch.nn.Identity)
    assert not any(k.startswith("scnet") or "deformable" in k for k in student.state_dict())
    assert len(student.fusion) == 1


def test_incompatible_sizes_name_the_field() -> None:
    with pytest.raises(ConfigError, match="scnet.reduction"):
        tiny_config(scnet=ScnetConfig(blocks=1, reduction=32))  # 16 channels // 32 = 0
    with pytest.raises(ConfigError, match="scnet.reduction"):
        tiny_config(bev_channels=12, scnet=ScnetConfig(blocks=1, reduction=4))  # odd width 3


def test_shipped_configs_enable_the_published_modules() -> None:
    for name in ("kitti_r50.yaml", "small.yaml"):
        cfg = load_model_config(CONFIG_DIR / name)
        assert cfg.scnet.blocks >= 2 and cfg.spatial_cue.alignment == "sam", name
        assert cfg.fusion_style == "ffm" and cfg.teacher.encoder == "voxel", name

"""Specification of the image trunks: stride 8 outputs and safe loading of user weights."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from monotakd_ros.errors import CheckpointError
from monotakd_ros.models.config import TrunkConfig
from monotakd_ros.models.trunks import build_trunk, load_trunk_weights


@pytest.mark.parametrize(("name", "image_ch", "depth_ch"),
                         [("resnet18", 256, 512), ("resnet50", 1024, 2048), ("small", 64, 64)])
def test_trunks_reach_stride_8(name: str, image_ch: int, depth_ch: int) -> None:
    trunk = build_trunk(TrunkConfig(name=name, small_channels=(16, 32, 64)),
                        with_depth_stage=True).eval()
    with torch.no_grad():
        out = trunk(torch.randn(1, 3, 64, 96))
    assert out.image.shape == (1, image_ch, 8, 12)
    assert out.depth is not None and out.depth.shape == (1, depth_ch, 8, 12)


def test_assistant_trunk_has_no_depth_stage() -> None:
    trunk = build_trunk(TrunkConfig(name="resnet18"), with_depth_stage=False)
    assert trunk.layer4 is None
    assert trunk(torch.randn(1, 3, 32, 32)).depth is None


def test_resnet_uses_torchvision_key_names() -> None:
    keys = set(build_trunk(TrunkConfig(name="resnet50"), with_depth_stage=True).state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight",
                "layer3.5.conv3.weight", "layer4.2.bn3.bias"):
        assert key in keys


def _donor_state(prefix: str = "") -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    donor = build_trunk(TrunkConfig(name="resnet18"), with_depth_stage=True)
    state = {prefix + k: v.clone() for k, v in donor.state_dict().items()}
    state[prefix + "fc.weight"] = torch.zeros(1000, 512)  # classifier: not part of the trunk
    return state


def test_loads_safetensors_and_prefixed_torch_state_dicts(tmp_path: Path) -> None:
    state = _donor_state()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "r18.safetensors"))
    torch.save({"state_dict": _donor_state("backbone.")}, tmp_path / "r18.pth")
    for path in (tmp_path / "r18.safetensors", tmp_path / "r18.pth"):
        trunk = build_trunk(TrunkConfig(name="resnet18", pretrained_path=path),
                            with_depth_stage=True)
        torch.testing.assert_close(trunk.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
        torch.testing.assert_close(trunk.bn1.running_var, state["bn1.running_var"])


def test_weight_loading_errors_name_the_file(tmp_path: Path) -> None:
    trunk = build_trunk(TrunkConfig(name="resnet18"), with_depth_stage=True)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_trunk_weights(trunk, tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth: cannot read"):
        load_trunk_weights(trunk, garbage)
    partial = {k: v for k, v in _donor_state().items() if not k.startswith("layer4")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial.pth: \d+ trunk tensors missing"):
        load_trunk_weights(trunk, tmp_path / "partial.pth")
    wrong = _donor_state()
    wrong["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="conv1.weight"):
        load_trunk_weights(trunk, tmp_path / "wrong.pth")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    # weights_only loading must reject any global outside torch's tensor allow-list
    torch.save({"conv1.weight": datetime.timedelta(days=1)}, tmp_path / "evil.pth")
    trunk = build_trunk(TrunkConfig(name="resnet18"), with_depth_stage=True)
    with pytest.raises(CheckpointError, match="evil.pth: cannot read"):
        load_trunk_weights(trunk, tmp_path / "evil.pth")

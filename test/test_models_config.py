"""Specification of monotakd_ros.models.config: strict YAML loading and the paper's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import ModelConfig, load_model_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "models"

# The real KITTI calibration (calib 000000.txt), typed in again as the independent reference
R0_RECT = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01,
                    -4.278459e-03, 7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
TR_VELO_TO_CAM = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03,
                           1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02,
                           9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]).reshape(3, 4)


def test_kitti_r50_has_the_paper_numbers() -> None:
    cfg = load_model_config(CONFIG_DIR / "kitti_r50.yaml")
    assert (cfg.grid.nx, cfg.grid.ny) == (140, 188)
    assert cfg.grid.slice_m == pytest.approx(0.4)
    assert cfg.trunk.name == "resnet50"
    assert (cfg.depth.num_bins, cfg.depth.min_m, cfg.depth.max_m) == (120, 2.0, 46.8)
    assert (cfg.image_channels, cfg.bev_channels) == (64, 128)
    assert cfg.head.class_names == ("Car", "Pedestrian", "Cyclist")
    car = cfg.head.anchors[0]
    assert car.size_lwh_m == (3.9, 1.6, 1.56)
    assert (car.bottom_z_m, car.match_iou, car.unmatch_iou) == (-1.78, 0.6, 0.45)
    assert cfg.head.rotations_rad == pytest.approx((0.0, np.pi / 2))
    # The YAML spells out the defaults: the dataclass defaults are the paper configuration,
    # except the published modules that are opt-in so that old checkpoints still build.
    opt_in = ("scnet", "spatial_cue", "fusion_style", "teacher")
    defaults = ModelConfig()
    assert dataclasses.replace(cfg, **{key: getattr(defaults, key) for key in opt_in}) == defaults
    assert cfg.spatial_cue.aspp_rates == defaults.spatial_cue.aspp_rates
    assert cfg.teacher.pfn_channels == defaults.teacher.pfn_channels


def test_small_config_keeps_ranges_and_coarsens_cells() -> None:
    cfg = load_model_config(CONFIG_DIR / "small.yaml")
    assert (cfg.grid.nx, cfg.grid.ny) == (70, 94)
    assert cfg.grid.x_range_m == (2.0, 46.8) and cfg.grid.y_range_m == (-30.08, 30.08)
    assert cfg.bev_channels == 64
    assert cfg.head == ModelConfig().head


def test_nominal_extrinsic_is_r0_rect_times_tr_velo_to_cam() -> None:
    expected = np.eye(4)
    expected[:3, :4] = R0_RECT @ TR_VELO_TO_CAM
    np.testing.assert_allclose(np.array(ModelConfig().nominal_T_rect_from_lidar), expected,
                               atol=1e-12)


def test_unknown_key_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("grid:\n  cell_size: 0.32\n")
    with pytest.raises(ConfigError, match="cell_size"):
        load_model_config(path)


def test_range_must_be_whole_cells(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("grid:\n  cell_m: 0.3\n")
    with pytest.raises(ConfigError, match="x_range_m"):
        load_model_config(path)


def test_bad_trunk_name_and_stride(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("trunk:\n  name: vgg\n")
    with pytest.raises(ConfigError, match="vgg"):
        load_model_config(path)
    path.write_text("trunk:\n  out_stride: 16\n")
    with pytest.raises(ConfigError, match="out_stride"):
        load_model_config(path)


def test_anchor_thresholds_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("head:\n  anchors:\n    - {class_name: Car, size_lwh_m: [3.9, 1.6, 1.56], "
                    "bottom_z_m: -1.78, match_iou: 0.4, unmatch_iou: 0.5}\n")
    with pytest.raises(ConfigError, match="Car"):
        load_model_config(path)


def test_relative_pretrained_path_follows_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "m.yaml"
    path.write_text("model:\n  trunk:\n    pretrained_path: ../weights/r50.pth\n")
    cfg = load_model_config(path)
    assert cfg.trunk.pretrained_path == (tmp_path / "weights" / "r50.pth").resolve()


def test_nominal_extrinsic_must_be_rigid_shaped(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("nominal_T_rect_from_lidar: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], "
                    "[0, 0, 1, 1]]\n")
    with pytest.raises(ConfigError, match="last row"):
        load_model_config(path)


def test_config_round_trips_through_plain_data(tmp_path: Path) -> None:
    """What a checkpoint stores (plain dict) rebuilds the same config."""
    import yaml

    from monotakd_ros.configuration import dataclass_to_dict

    cfg = load_model_config(CONFIG_DIR / "small.yaml")
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(dataclass_to_dict(cfg)))
    assert load_model_config(path) == cfg

"""Detector parameters: generated from DetectorConfig, read back into it, bad values named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from monotakd_ros.bags import kitti_layout
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.coord_frames import T_body_from_optical
from monotakd_ros.nodes.detector_params import (
    PARAMETERS,
    DetectorConfig,
    declare_detector_parameters,
    detector_config_from_node,
    executor_choice,
)
from monotakd_ros.resources import default_model_path
from monotakd_ros.ros.diagnostics import DiagnosticThresholds
from monotakd_ros.ros.param_checks import check_parameter_overrides

ROOT = Path(__file__).resolve().parents[1]
SPECS = {spec.name: spec for spec in PARAMETERS}


@pytest.fixture
def context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def make_node(context: Context, *overrides: Parameter, cli_args: list[str] | None = None) -> Node:
    node = Node("monotakd_detector", context=context, parameter_overrides=list(overrides),
                cli_args=cli_args)
    declare_detector_parameters(node)
    return node


def test_defaults_come_from_the_config_and_the_kitti_layout(context: Context) -> None:
    node = make_node(context)
    config = detector_config_from_node(node)
    assert config == DetectorConfig()
    assert config.checkpoint_path() == default_model_path()
    assert (config.image_topic, config.camera_info_topic) == (
        kitti_layout.IMAGE_TOPIC, kitti_layout.CAMERA_INFO_TOPIC)
    assert config.diagnostics == DiagnosticThresholds()  # one set of threshold defaults
    assert SPECS["diagnostics.processing_warn_ms"].default == 100.0
    assert (config.output_frame, config.horizon_row_px, config.class_ids) == (None, None, None)
    assert config.reliable_input is False
    np.testing.assert_array_equal(config.output_transform(), T_body_from_optical())
    for name in ("output_frame", "horizon_row_px", "class_ids"):  # unset, not a sentinel
        with pytest.raises(ParameterUninitializedException):
            node.get_parameter(name)
    for name in SPECS:
        assert len(node.describe_parameter(name).description) > 10, name
    node.destroy_node()


def test_ranges_are_declared_once_and_reach_the_descriptors(context: Context) -> None:
    node = make_node(context)
    score = node.describe_parameter("score_threshold")
    assert (score.floating_point_range[0].from_value,
            score.floating_point_range[0].to_value) == (0.0, 1.0)
    assert "must lie in [0, 1)" in score.description
    assert node.describe_parameter("max_detections").integer_range[0].from_value == 1
    assert node.describe_parameter("sync_slop_s").floating_point_range[0].from_value == 0.0
    assert "must be > 0" in node.describe_parameter("sync_slop_s").description
    assert "one of: virtual | fit_width" in node.describe_parameter("camera_mode").description
    node.destroy_node()


def test_params_file_is_read_by_rclpy_nested_names_included(context: Context,
                                                            tmp_path: Path) -> None:
    shipped = ROOT / "config/detector.yaml"
    node = make_node(context, cli_args=["--ros-args", "--params-file", str(shipped)])
    assert detector_config_from_node(node) == DetectorConfig()  # it restates the defaults
    node.destroy_node()
    changed = tmp_path / "detector.yaml"
    changed.write_text(
        "monotakd_detector:\n  ros__parameters:\n    sync_slop_s: 0.05\n"
        "    output_frame: base_link\n    horizon_row_px: 180.0\n"
        "    class_ids: 'Car:vehicle'\n    qos_reliability: reliable\n"
        "    diagnostics:\n      drop_rate_warn: 0.4\n      processing_error_ms: 250.0\n")
    node = make_node(context, cli_args=["--ros-args", "--params-file", str(changed)])
    config = detector_config_from_node(node)
    assert (config.sync_slop_s, config.output_frame, config.horizon_row_px) == (
        0.05, "base_link", 180.0)
    assert config.published_class_ids(("Car", "Cyclist")) == {"Car": "vehicle",
                                                              "Cyclist": "cyclist"}
    assert config.reliable_input is True
    assert config.diagnostics == DiagnosticThresholds(drop_rate_warn=0.4,
                                                      processing_error_ms=250.0)
    node.destroy_node()


@pytest.mark.parametrize(("parameter", "match"), [
    (Parameter("qos_reliability", value="sometimes"),
     r"qos_reliability: 'sometimes' is not one of \['best_effort', 'reliable'\]"),
    (Parameter("T_output_from_optical", value=[1.0] * 15), "needs 16 values"),
    (Parameter("T_output_from_optical", value=np.diag([2.0, 2.0, 2.0, 1.0]).ravel().tolist()),
     "T_output_from_optical rotation is not a proper rotation"),
    (Parameter("sync_slop_s", value=0.0), r"monotakd_detector.sync_slop_s: must be > 0, got 0.0"),
    (Parameter("score_threshold", value=1.0), r"score_threshold: must lie in \[0, 1\), got 1.0"),
    (Parameter("image_topic", value=" "), "image_topic: must not be empty"),
    (Parameter("output_frame", value=""), "output_frame: must not be empty .leave it unset"),
    (Parameter("diagnostics.drop_rate_warn", value=0.95),
     "diagnostics.drop_rate_warn / diagnostics.drop_rate_error: need .* got 0.95 / 0.9"),
    (Parameter("network_path", value="tensorrt"), "network_path: expected 'auto', 'eager'"),
    (Parameter("camera_mode", value="pinhole"), "camera_mode: 'pinhole' is not one of"),
    (Parameter("executor", value="multi"), "executor: 'multi' is not one of"),
    (Parameter("class_ids", value="Car"), "class_ids: expected 'ClassName:class_id'"),
])
def test_bad_values_name_the_parameter(context: Context, parameter: Parameter,
                                       match: str) -> None:
    node = make_node(context, parameter)
    with pytest.raises(ConfigError, match=match):
        detector_config_from_node(node)
    node.destroy_node()


@pytest.mark.parametrize(("parameter", "match"), [
    (Parameter("horizon_row_px", value=-1.0), "horizon_row_px out of range"),  # old sentinel
    (Parameter("max_detections", value=0), "max_detections out of range"),
    (Parameter("marker_lifetime_s", value=-0.5), "marker_lifetime_s out of range"),
])
def test_values_outside_the_declared_range_fail_at_declaration(context: Context,
                                                               parameter: Parameter,
                                                               match: str) -> None:
    node = Node("monotakd_detector", context=context, parameter_overrides=[parameter])
    with pytest.raises(ConfigError, match=match):
        declare_detector_parameters(node)
    node.destroy_node()


@pytest.mark.parametrize(("old", "new"), [
    ("sync_slop", "sync_slop_s"), ("marker_lifetime", "marker_lifetime_s"),
    ("diagnostics_period", "diagnostics_period_s"),
    ("diag_drop_rate_warn", "diagnostics.drop_rate_warn")])
def test_old_names_are_rejected_with_the_new_one_suggested(context: Context, old: str,
                                                          new: str) -> None:
    node = make_node(context, Parameter(old, value=0.5))
    with pytest.raises(ConfigError, match=f"unknown parameter '{old}' .did you mean '{new}'"):
        check_parameter_overrides(node, [])
    node.destroy_node()


def test_empty_model_path_means_the_shipped_model(context: Context, tmp_path: Path) -> None:
    node = make_node(context, Parameter("model_path", value=""))
    assert detector_config_from_node(node).checkpoint_path() == default_model_path()
    node.set_parameters([Parameter("model_path", value=str(tmp_path / "m"))])
    assert detector_config_from_node(node).checkpoint_path() == tmp_path / "m"
    node.destroy_node()


def test_executor_is_checked_before_configure(context: Context) -> None:
    node = make_node(context, Parameter("executor", value="events"))
    assert executor_choice(node) == "events"
    node.set_parameters([Parameter("executor", value="multi")])
    with pytest.raises(ConfigError, match=r"executor: 'multi' is not one of \['events', "
                                          r"'single_threaded'\]"):
        executor_choice(node)
    node.destroy_node()

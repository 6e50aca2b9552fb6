"""Detector parameters: declared with descriptions, validated into one DetectorParams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.coord_frames import T_body_from_optical
from monotakd_ros.nodes.detector_params import (
    PARAMETERS,
    declare_detector_parameters,
    detector_params_from_node,
)
from monotakd_ros.resources import default_model_path

ROOT = Path(__file__).resolve().parents[1]


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


def test_defaults_and_descriptions(context: Context) -> None:
    node = make_node(context)
    params = detector_params_from_node(node)
    assert params.model_path == default_model_path()
    assert params.reliable_input is False and params.output_frame == ""
    np.testing.assert_array_equal(params.T_output_from_optical, T_body_from_optical())
    for name in PARAMETERS:
        assert len(node.describe_parameter(name).description) > 10, name
    node.destroy_node()


def test_params_file_is_read_by_rclpy(context: Context) -> None:
    path = ROOT / "config/detector.yaml"
    node = make_node(context, cli_args=["--ros-args", "--params-file", str(path)])
    params = detector_params_from_node(node)
    expected = yaml.safe_load(path.read_text())["monotakd_detector"]["ros__parameters"]
    assert params.image_topic == expected["image_topic"]
    assert params.camera_info_topic == expected["camera_info_topic"]
    assert params.score_threshold == expected["score_threshold"]
    assert params.thresholds.processing_warn_ms == expected["diag_processing_warn_ms"]
    node.destroy_node()


@pytest.mark.parametrize(("parameter", "match"), [
    (Parameter("qos_reliability", value="sometimes"), "qos_reliability: expected one of"),
    (Parameter("T_output_from_optical", value=[1.0] * 15), "needs 16 values"),
    (Parameter("T_output_from_optical", value=(2.0 * np.eye(4)).ravel().tolist()),
     "T_output_from_optical"),
    (Parameter("sync_slop", value=0.0), "sync_slop: must be > 0"),
    (Parameter("image_topic", value=" "), "image_topic: must not be empty"),
    (Parameter("diag_drop_rate_warn", value=0.95), "diag_drop_rate_warn/error"),
    (Parameter("marker_lifetime", value=-1.0), "marker_lifetime"),
    (Parameter("network_path", value="tensorrt"), "network_path: expected 'auto', 'eager'"),
])
def test_bad_values_name_the_parameter(context: Context, parameter: Parameter,
                                       match: str) -> None:
    node = make_node(context, parameter)
    with pytest.raises(ConfigError, match=match):
        detector_params_from_node(node)
    node.destroy_node()


def test_empty_model_path_means_the_shipped_model(context: Context, tmp_path: Path) -> None:
    node = make_node(context, Parameter("model_path", value=""))
    assert detector_params_from_node(node).model_path == default_model_path()
    node.set_parameters([Parameter("model_path", value=str(tmp_path / "m"))])
    assert detector_params_from_node(node).model_path == tmp_path / "m"
    node.destroy_node()

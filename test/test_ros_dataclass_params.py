"""ROS parameters generated from a config dataclass, and the dataclass built back from them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter

from monotakd_ros.configuration import bounded, check_fields, described
from monotakd_ros.distiller.run_config import distiller_config_from_values
from monotakd_ros.errors import ConfigError
from monotakd_ros.nodes import distiller
from monotakd_ros.ros.dataclass_params import (
    config_from_node,
    config_from_values,
    declare_parameters,
    parameter_specs,
)
from monotakd_ros.ros.param_checks import parameter_type_errors


@dataclass(frozen=True)
class Weights:
    """Key class of the dict field."""

    alpha: float = bounded(1.0, ge=0)
    sharp: bool = False
    name: str = "ignored: not a number"


@dataclass(frozen=True)
class Inner:
    """A nested config with a non-default default instance."""

    rate_hz: float = bounded(10.0, gt=0, help="rate")
    count: int = bounded(3, gt=0, le=8, help="count")
    hidden: int = 7
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outer:
    """A config with every kind of field the generator supports."""

    out_dir: Path = described(help="required folder")
    model: Path | None = described(None, help="optional file")
    scale: float | None = described(None, help="optional number")
    mode: Literal["a", "b"] = described("a", help="mode")
    paths: tuple[Path, ...] = described((), help="paths")
    matrix: tuple[float, ...] = described((1.0, 2.0), help="numbers")
    inner: Inner = field(default_factory=lambda: Inner(rate_hz=20.0, hidden=9))

    def __post_init__(self) -> None:
        check_fields(self, "outer")


SPECS = parameter_specs(Outer, select={"inner": {"rate_hz", "count", "weights"}},
                        entries={"inner.weights": Weights},
                        descriptions={"inner.weights": "weight over the default"})
BY_NAME = {spec.name: spec for spec in SPECS}


def test_specs_carry_names_types_defaults_and_ranges() -> None:
    assert list(BY_NAME) == ["out_dir", "model", "scale", "mode", "paths", "matrix",
                             "inner.rate_hz", "inner.count", "inner.weights.alpha",
                             "inner.weights.sharp"]
    assert BY_NAME["out_dir"].required and BY_NAME["out_dir"].default is None
    assert BY_NAME["model"].default == "" and BY_NAME["model"].empty_is_none
    assert BY_NAME["scale"].default is None and BY_NAME["scale"].type == Parameter.Type.DOUBLE
    assert BY_NAME["paths"].default is None  # an empty array has no ROS type
    assert BY_NAME["paths"].type == Parameter.Type.STRING_ARRAY
    assert BY_NAME["matrix"].default == [1.0, 2.0]
    assert BY_NAME["inner.rate_hz"].default == 20.0  # the default instance's, not the class's
    assert "one of: a | b" in BY_NAME["mode"].description
    assert "must lie in (0, 8]" in BY_NAME["inner.count"].description
    count = BY_NAME["inner.count"].descriptor().integer_range[0]
    assert (count.from_value, count.to_value) == (1, 8)  # gt=0 on an integer: from 1
    rate = BY_NAME["inner.rate_hz"].descriptor().floating_point_range[0]
    assert rate.from_value == 0.0 and rate.to_value == math.inf
    assert BY_NAME["inner.weights.alpha"].default is None


def test_values_build_the_dataclass_with_defaults_for_what_is_not_set() -> None:
    config = config_from_values(Outer, SPECS, {"out_dir": "run", "model": "",
                                               "inner.count": 5,
                                               "inner.weights.alpha": 0.5}, "node")
    assert config.out_dir == Path("run") and config.model is None and config.scale is None
    assert config.paths == () and config.matrix == (1.0, 2.0)
    assert config.inner == Inner(rate_hz=20.0, count=5, hidden=9, weights={"alpha": 0.5})


@pytest.mark.parametrize(("values", "match"), [
    ({}, r"node: required parameter\(s\) not set: out_dir \(required folder\)"),
    ({"out_dir": ""}, "required parameter"),
    ({"out_dir": "r", "inner.count": 9}, r"node\.inner\.count: must lie in \(0, 8\], got 9"),
    ({"out_dir": "r", "paths": ["a", ""]}, r"node\.paths\[1\]: empty path"),
    ({"out_dir": "r", "mode": "c"}, r"node\.mode: 'c' is not one of \['a', 'b'\]"),
    ({"out_dir": "r", "inner.hidden": 1}, r"unknown parameter\(s\) \['inner.hidden'\]"),
])
def test_bad_values_name_the_parameter(values: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_values(Outer, SPECS, values, "node")


def test_a_node_declares_the_specs_and_rejects_out_of_range_overrides() -> None:
    argv = ["x", "--ros-args", "-p", "out_dir:=/tmp/run", "-p", "scale:=2.5",
            "-p", "inner.weights.sharp:=true"]
    context = rclpy.Context()
    rclpy.init(args=argv, context=context)
    try:
        node = Node("dataclass_params_test", context=context)
        declare_parameters(node, SPECS)
        assert node.describe_parameter("inner.count").description.startswith("count")
        config = config_from_node(node, Outer, SPECS)
        assert config.scale == 2.5 and config.inner.weights == {"sharp": True}
        assert config.out_dir == Path("/tmp/run") and config.model is None
        node.destroy_node()
        bad = Node("dataclass_params_bad", context=context,
                   parameter_overrides=[Parameter("inner.count", value=0)])
        with pytest.raises(ConfigError, match="inner.count out of range"), \
                parameter_type_errors("dataclass_params_bad"):
            declare_parameters(bad, SPECS)
        bad.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_distiller_parameters_keep_the_distiller_defaults_of_train() -> None:
    names = {spec.name: spec for spec in distiller.PARAMETERS}
    assert names["train.lr"].default == 2e-4  # distill_train_defaults, not TrainConfig's 2e-3
    assert names["train.schedule"].default == "constant"
    assert "train.epochs" not in names and "train.workers" not in names
    config = config_from_values(distiller.DistillerConfig, distiller.PARAMETERS,
                                {"out_dir": "o", "teacher": "t", "assistant": "a",
                                 "bags": ["b"], "train.distill_overrides.imd_weight": 0.0},
                                "distiller")
    assert config.train.workers == 0 and config.train.val_interval == 0  # not parameters
    assert config.train.distill_overrides == {"imd_weight": 0.0}
    # The core path (parameter files, scripts): an empty required path is an error, not ".".
    with pytest.raises(ConfigError, match=r"distiller\.teacher: empty path"):
        distiller_config_from_values({"out_dir": "o", "teacher": "", "assistant": "a",
                                      "bags": ["b"]})

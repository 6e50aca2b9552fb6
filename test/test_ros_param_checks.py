"""Params files and -p overrides: unknown names, misspelt node names and wrong types are errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node

from monotakd_ros.errors import ConfigError
from monotakd_ros.nodes.detector import DetectorNode
from monotakd_ros.nodes.distiller import DistillerNode
from monotakd_ros.nodes.evaluator import EvaluatorNode
from monotakd_ros.ros.dataclass_params import declare_parameters
from monotakd_ros.ros.param_checks import (
    check_parameter_overrides,
    entry_applies,
    params_file_paths,
)

ROOT = Path(__file__).resolve().parents[1]


def params_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def ros() -> Iterator[list[Context]]:
    """Contexts opened by the test (``init``), all shut down afterwards."""
    contexts: list[Context] = []
    yield contexts
    for context in contexts:
        context.try_shutdown()  # destroys the nodes: a half-built one must not raise either


def init(contexts: list[Context], argv: list[str]) -> Context:
    context = Context()
    rclpy.init(args=argv, context=context)
    contexts.append(context)
    return context


def detector_with(contexts: list[Context], argv: list[str]) -> DetectorNode:
    node = DetectorNode(context=init(contexts, argv))
    check_parameter_overrides(node, argv)
    return node


def test_a_misspelt_parameter_in_a_params_file_is_named_with_a_suggestion(ros, tmp_path) -> None:
    path = params_file(tmp_path, "monotakd_detector:\n  ros__parameters:\n"
                                 "    scor_threshold: 0.5\n    device: cpu\n")
    argv = ["monotakd_detector", "--ros-args", "--params-file", str(path)]
    with pytest.raises(ConfigError, match="unknown parameter 'scor_threshold' "
                                          r"\(did you mean 'score_threshold'\?\)"):
        detector_with(ros, argv)


def test_a_misspelt_node_name_in_a_params_file_is_an_error(ros, tmp_path) -> None:
    path = params_file(tmp_path, "monotakd_detectr:\n  ros__parameters:\n"
                                 "    score_threshold: 0.5\n")
    with pytest.raises(ConfigError, match=f"params file {path}: entry '/monotakd_detectr' "
                                          "names no node; this node is '/monotakd_detector'"):
        detector_with(ros, ["x", "--ros-args", "--params-file", str(path)])


def test_a_params_file_without_an_entry_for_the_node_is_an_error(ros, tmp_path) -> None:
    path = params_file(tmp_path, "monotakd_evaluator:\n  ros__parameters:\n"
                                 "    report_dir: /tmp\n")
    with pytest.raises(ConfigError, match="has no entry for node '/monotakd_detector' "
                                          r"\(entries: \['/monotakd_evaluator'\]\)"):
        detector_with(ros, ["x", "--ros-args", "--params-file", str(path)])


def test_wildcards_and_other_nodes_entries_are_accepted(ros, tmp_path) -> None:
    path = params_file(tmp_path, "/**:\n  ros__parameters:\n    use_sim_time: false\n"
                                 "monotakd_evaluator:\n  ros__parameters:\n    x: 1\n"
                                 "monotakd_detector:\n  ros__parameters:\n"
                                 "    score_threshold: 0.4\n")
    node = detector_with(ros, ["x", "--ros-args", "--params-file", str(path)])
    assert node.get_parameter("score_threshold").value == 0.4


def test_unknown_command_line_overrides_are_errors_too(ros) -> None:
    argv = ["x", "--ros-args", "-p", "nms_iuo:=0.2"]
    with pytest.raises(ConfigError, match=r"unknown parameter 'nms_iuo' \(did you mean "
                                          r"'nms_iou'\?\) \(declared: .*score_threshold"):
        detector_with(ros, argv)


def test_an_integer_for_a_float_parameter_is_a_clean_config_error(ros, tmp_path) -> None:
    path = params_file(tmp_path, "monotakd_detector:\n  ros__parameters:\n"
                                 "    score_threshold: 1\n")
    with pytest.raises(ConfigError, match="'score_threshold' to '1' of type 'INTEGER', "
                                          r"expecting type 'DOUBLE'.*\(1.0, not 1\)"):
        DetectorNode(context=init(ros, ["x", "--ros-args", "--params-file", str(path)]))
    # The fixture then shuts the context down, destroying the half-built node cleanly.


@pytest.mark.parametrize(("node_class", "argv", "match"), [
    (EvaluatorNode, ["-p", "report_dir:=/tmp/r", "-p", "stamp_tolerance:=0.1"],
     r"unknown parameter 'stamp_tolerance' \(did you mean 'stamp_tolerance_s'\?\)"),
    (DistillerNode, ["-p", "train.l:=0.001"],
     r"unknown parameter 'train.l' \(did you mean 'train.lr'\?\)"),
])
def test_evaluator_and_distiller_check_their_overrides(node_class, argv: list[str],
                                                       match: str) -> None:
    argv = ["x", "--ros-args", *argv]
    rclpy.init(args=argv)
    try:
        with pytest.raises(ConfigError, match=match):
            node = node_class(argv) if node_class is DistillerNode else node_class()
            check_parameter_overrides(node, argv)
    finally:
        rclpy.try_shutdown()


@pytest.mark.parametrize(("config", "node_name"), [("detector.yaml", "monotakd_detector"),
                                                    ("distill.yaml", "monotakd_distiller")])
def test_the_shipped_params_files_name_only_declared_parameters(ros, config: str,
                                                                node_name: str) -> None:
    argv = ["x", "--ros-args", "--params-file", str(ROOT / "config" / config)]
    context = init(ros, argv)
    node = (DetectorNode(context=context) if node_name == "monotakd_detector"
            else Node(node_name, context=context))
    if node_name == "monotakd_distiller":
        from monotakd_ros.nodes.distiller import PARAMETERS
        declare_parameters(node, PARAMETERS)
    check_parameter_overrides(node, argv)  # no ConfigError


def test_params_file_arguments_and_node_patterns() -> None:
    assert params_file_paths(["prog", "--params-file", "no", "--ros-args", "--params-file",
                              "a.yaml", "-p", "x:=1", "--", "--params-file", "no"]) == [
        Path("a.yaml")]
    assert entry_applies("/**", "/ns/node") and entry_applies("/**/node", "/node")
    assert entry_applies("node", "/node") and entry_applies("/ns/*", "/ns/node")
    assert not entry_applies("/other", "/node") and not entry_applies("/ns/node", "/node")

"""The parameter files in config/ and the launch files agree with the nodes' declared parameters.

Distiller, evaluator and detector parameters are generated from their dataclasses
(``DistillerConfig``, ``EvaluatorConfig``, ``DetectorConfig``). Every key of a file must be a
declared parameter,
and a value the file restates must equal the declared default (the file documents defaults,
it does not silently change them). Launch files are read with ``ast`` (launch_ros is not a
pip package): every parameter name they pass must be declared, with the right type.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest
from rclpy.parameter import Parameter

from monotakd_ros.configuration import load_yaml_mapping
from monotakd_ros.nodes import distiller, distiller_cli, evaluator
from monotakd_ros.nodes.detector_params import PARAMETERS as DETECTOR_PARAMETERS
from monotakd_ros.ros.dataclass_params import ParameterSpec

ROOT = Path(__file__).resolve().parents[1]
DISTILLER = {spec.name: spec for spec in distiller.PARAMETERS}
EVALUATOR = {spec.name: spec for spec in evaluator.PARAMETERS}
DETECTOR = {spec.name: spec for spec in DETECTOR_PARAMETERS}
_TYPE_OF_PYTHON = {str: Parameter.Type.STRING, float: Parameter.Type.DOUBLE,
                   int: Parameter.Type.INTEGER, bool: Parameter.Type.BOOL}


def flat_parameters(path: Path, node: str) -> dict[str, Any]:
    """``ros__parameters`` of ``node`` with nested mappings as dotted names."""
    section = load_yaml_mapping(path)[node]["ros__parameters"]
    flat: dict[str, Any] = {}

    def walk(mapping: dict[str, Any], prefix: str) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")  # an empty mapping sets nothing
            else:
                flat[f"{prefix}{key}"] = value
    walk(section, "")
    return flat


def same_value(a: Any, b: Any) -> bool:
    """Equal values; floats to 1e-12 relative, lists item by item."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return not isinstance(a, bool) and not isinstance(b, bool) and math.isclose(
            a, b, rel_tol=1e-12)
    return type(a) is type(b) and a == b


def test_distill_yaml_names_declared_parameters_and_restates_their_defaults() -> None:
    values = flat_parameters(ROOT / "config" / "distill.yaml", "monotakd_distiller")
    assert set(values) <= set(DISTILLER), sorted(set(values) - set(DISTILLER))
    assert len(values) >= 30  # the file documents nearly every setting
    differing = {name: (value, DISTILLER[name].default) for name, value in values.items()
                 if not same_value(value, DISTILLER[name].default)}
    assert differing == {}


def test_detector_yaml_names_declared_parameters_and_restates_their_defaults() -> None:
    values = flat_parameters(ROOT / "config" / "detector.yaml", "monotakd_detector")
    assert set(values) <= set(DETECTOR), sorted(set(values) - set(DETECTOR))
    # Every parameter with a default is documented; the unset ones are comments there.
    with_default = {name for name, spec in DETECTOR.items() if spec.default is not None}
    assert with_default - {"model_path", "autostart"} <= set(values)
    differing = {name: (value, DETECTOR[name].default) for name, value in values.items()
                 if not same_value(value, DETECTOR[name].default)}
    assert differing == {}


def test_every_generated_parameter_is_described() -> None:
    for spec in [*distiller.PARAMETERS, *evaluator.PARAMETERS, *DETECTOR_PARAMETERS]:
        assert len(spec.description) > 10, spec.name


def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def assigned_literal(path: Path, variable: str) -> Any:
    """The literal value assigned to a module-level name of a launch file."""
    for node in _module(path).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name}: no assignment to {variable}")


def node_parameter_dicts(path: Path) -> dict[str, dict[str, ast.expr]]:
    """Node name -> the literal parameter dicts (key -> value expression) a launch file passes."""
    found: dict[str, dict[str, ast.expr]] = {}
    for call in ast.walk(_module(path)):
        if not isinstance(call, ast.Call):
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        name, parameters = keywords.get("name"), keywords.get("parameters")
        if not isinstance(name, ast.Constant) or not isinstance(parameters, ast.List):
            continue
        entries = found.setdefault(name.value, {})
        for item in parameters.elts:
            if isinstance(item, ast.Dict):
                entries.update({k.value: v for k, v in zip(item.keys, item.values, strict=True)
                                if isinstance(k, ast.Constant)})
    return found


def _declared_type(node: str, name: str) -> Parameter.Type:
    specs: dict[str, ParameterSpec] = {"monotakd_evaluator": EVALUATOR,
                                       "monotakd_distiller": DISTILLER,
                                       "monotakd_detector": DETECTOR}[node]
    return specs[name].type


def test_replay_eval_launch_passes_declared_parameters_with_their_types() -> None:
    passed = node_parameter_dicts(ROOT / "launch" / "replay_eval.launch.py")
    assert set(passed) == {"monotakd_evaluator", "monotakd_detector"}
    declared = {"monotakd_evaluator": set(EVALUATOR), "monotakd_detector": set(DETECTOR)}
    for node, entries in passed.items():
        assert set(entries) <= declared[node], (node, sorted(set(entries) - declared[node]))
        for name, expression in entries.items():
            kind = _value_type(expression)
            if kind is not None:
                assert kind == _declared_type(node, name), (node, name)
    assert {"stamp_tolerance_s", "end_grace_s", "overlay_count"} <= set(
        passed["monotakd_evaluator"])


def _value_type(expression: ast.expr) -> Parameter.Type | None:
    """Type of a literal, of ``number(name, float)`` / ``text(name)``; None if unknown."""
    if isinstance(expression, ast.Constant):
        return _TYPE_OF_PYTHON[type(expression.value)]
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
        if expression.func.id == "text":
            return Parameter.Type.STRING
        if expression.func.id == "number" and isinstance(expression.args[1], ast.Name):
            return _TYPE_OF_PYTHON[{"float": float, "int": int}[expression.args[1].id]]
    return None


@pytest.mark.parametrize(("variable", "kind"), [
    ("_STRING_ARGUMENTS", Parameter.Type.STRING), ("_FLOAT_ARGUMENTS", Parameter.Type.DOUBLE),
    ("_INT_ARGUMENTS", Parameter.Type.INTEGER)])
def test_distill_launch_arguments_are_distiller_parameters_of_their_type(
        variable: str, kind: Parameter.Type) -> None:
    names = assigned_literal(ROOT / "launch" / "distill.launch.py", variable)
    assert names and {DISTILLER[name].type for name in names} == {kind}


def test_detector_launch_overrides_are_detector_parameters() -> None:
    path = ROOT / "launch" / "detector.launch.py"
    names = assigned_literal(path, "OVERRIDES")
    assert set(names) <= set(DETECTOR), sorted(set(names) - set(DETECTOR))
    # Launch arguments are text: each one must set a string parameter.
    assert {DETECTOR[name].type for name in names} == {Parameter.Type.STRING}
    passed = node_parameter_dicts(path)["monotakd_detector"]
    assert set(passed) <= set(DETECTOR), sorted(set(passed) - set(DETECTOR))
    assert DETECTOR["autostart"].type == Parameter.Type.BOOL and "autostart" in passed


def test_distill_console_flags_set_distiller_parameters() -> None:
    destinations = [*distiller_cli._PATH_FLAGS.values(), *distiller_cli._VALUE_FLAGS.values()]
    assert set(destinations) <= set(DISTILLER), sorted(set(destinations) - set(DISTILLER))
    paths = {name for name, spec in DISTILLER.items() if spec.empty_is_none or spec.required}
    assert set(distiller_cli._PATH_FLAGS.values()) <= paths | {"out_dir"}

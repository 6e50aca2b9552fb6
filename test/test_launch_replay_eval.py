"""launch/replay_eval.launch.py tells the evaluator how much ground truth the bag holds.

``launch``/``launch_ros`` are not installable here, so the launch file runs against small
stand-ins that record what it builds; the count comes from the real bag index.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from helpers_replay_eval import write_eval_bag

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "replay_eval.launch.py"


class Recorded:
    """Any launch action or substitution: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class Configuration(Recorded):
    """LaunchConfiguration: ``perform`` reads the value from the test's context dict."""

    def perform(self, context: dict[str, str]) -> str:
        return context[self.args[0]]


def stand_in_modules() -> dict[str, types.ModuleType]:
    names = {
        "launch.actions": ["DeclareLaunchArgument", "EmitEvent", "OpaqueFunction",
                           "RegisterEventHandler"],
        "launch.event_handlers": ["OnProcessExit"], "launch.events": ["Shutdown"],
        "launch.launch_description": ["LaunchDescription"],
        "launch.substitutions": ["PathJoinSubstitution", "PythonExpression"],
        "launch_ros.actions": ["LifecycleNode", "Node"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    modules = {"launch": types.ModuleType("launch"), "launch_ros": types.ModuleType("launch_ros")}
    for name, classes in names.items():
        module = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        modules[name] = module
    modules["launch.substitutions"].LaunchConfiguration = Configuration
    return modules


def test_the_evaluator_gets_the_bags_ground_truth_count(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("replay_eval_launch", LAUNCH_FILE)
    assert spec is not None and spec.loader is not None
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    description = launch_file.generate_launch_description()
    [opaque] = [a for a in description.args[0] if type(a).__name__ == "OpaqueFunction"]
    bag = write_eval_bag(tmp_path, num_frames=5)
    evaluator, stop = opaque.kwargs["function"]({"bag": str(bag.bag)})
    assert evaluator.kwargs["name"] == "monotakd_evaluator"
    assert evaluator.kwargs["parameters"][0]["expected_ground_truth"] == 5
    assert stop.args[0].kwargs["target_action"] is evaluator  # shutdown once it reports

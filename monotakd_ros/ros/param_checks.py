"""Parameters a node was given but does not know, and parameter type errors, as ConfigErrors.

rclpy applies a ``--params-file`` entry only to the node it names and silently ignores
overrides of undeclared parameters, so ``scor_threshold: 0.5`` or an entry for
``monotakd_detectr`` would change nothing without a word. After declaring its parameters a
node calls ``check_parameter_overrides``: every override (file or ``-p``) must name a declared
parameter, and every params file must hold an entry that applies to this node; errors name
the file, the unknown names and the closest declared name (difflib).

The overrides come from ``Node._parameter_overrides`` (rclpy 9.x keeps the file and ``-p``
values there, already matched to this node and flattened); the entries of each file are read
here with ``yaml.safe_load`` because rclpy drops those for other node names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from monotakd_ros.errors import ConfigError

PARAMS_KEY = "ros__parameters"
# Declared on demand by rclpy when a publisher opts into QoS overrides; never a typo of ours.
ALLOWED_PREFIXES = ("qos_overrides.",)


def params_file_paths(argv: Sequence[str]) -> list[Path]:
    """The ``--params-file`` arguments inside ``--ros-args`` sections of ``argv``."""
    paths, in_ros_args = [], False
    args = list(argv)
    for index, arg in enumerate(args):
        if arg == "--ros-args":
            in_ros_args = True
        elif arg == "--":
            in_ros_args = False
        elif in_ros_args and arg == "--params-file" and index + 1 < len(args):
            paths.append(Path(args[index + 1]))
    return paths


def node_entries(path: Path) -> list[str]:
    """Node patterns of a params file: the key paths that hold ``ros__parameters``."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"params file {path}: cannot read it ({err})") from err
    if not isinstance(document, dict):
        raise ConfigError(f"params file {path}: expected a mapping of node names, got "
                          f"{type(document).__name__}")
    entries: list[str] = []

    def walk(mapping: dict[Any, Any], prefix: str) -> None:
        for key, value in mapping.items():
            if key == PARAMS_KEY:
                entries.append(prefix or "/")
            elif isinstance(value, dict):
                walk(value, f"{prefix}/{str(key).strip('/')}")
    walk(document, "")
    return entries


def entry_applies(pattern: str, fully_qualified_name: str) -> bool:
    """Whether a params-file node key (with ``*`` / ``**`` wildcards) names this node."""
    parts = [part for part in pattern.strip("/").split("/") if part]
    regex = "/".join(".*" if part == "**" else re.escape(part).replace(r"\*", "[^/]*")
                     for part in parts)
    regex = regex.replace(".*/", "(.*/)?")  # /**/node also matches a node at the root
    return re.fullmatch(regex, fully_qualified_name.strip("/")) is not None


def _suggestion(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_parameter_overrides(node: Node) -> list[str]:
    """Names given to this node (params file or ``-p``) that it never declared."""
    overrides = getattr(node, "_parameter_overrides", {})
    # An empty YAML mapping (``distill_overrides: {}``) arrives as a NOT_SET value: no setting.
    return sorted(name for name, parameter in overrides.items()
                  if not node.has_parameter(name) and not name.startswith(ALLOWED_PREFIXES)
                  and parameter.type_ != Parameter.Type.NOT_SET)


def check_parameter_overrides(node: Node, argv: Sequence[str]) -> None:
    """ConfigError for unknown parameter names and params files with no entry for this node."""
    declared = node.list_parameters([], 0).names
    unknown = unknown_parameter_overrides(node)
    problems = [f"unknown parameter '{name}'{_suggestion(name, declared)}" for name in unknown]
    full_name = node.get_fully_qualified_name()
    for path in params_file_paths(argv):
        entries = node_entries(path)
        others = [e for e in entries if not entry_applies(e, full_name)]
        # Another node's entry is fine; a near miss of this node's name is a misspelling.
        misspelt = [e for e in others if difflib.get_close_matches(full_name, [e], 1, 0.8)]
        if misspelt:
            problems.append(f"params file {path}: entry {misspelt[0]!r} names no node; "
                            f"this node is {full_name!r}")
        elif len(others) == len(entries):
            problems.append(f"params file {path} has no entry for node {full_name!r} "
                            f"(entries: {entries})")
    if problems:
        listing = f" (declared: {', '.join(sorted(declared))})" if unknown else ""
        raise ConfigError(f"{node.get_name()}: " + "; ".join(problems) + listing)


@contextmanager
def parameter_type_errors(node_name: str) -> Iterator[None]:
    """Declarations whose override has the wrong type (``1`` for a double) -> ConfigError."""
    try:
        yield
    except ParameterException as err:
        hint = ("; write floating-point values with a decimal point (1.0, not 1)"
                if "expecting type 'DOUBLE'" in str(err) else "")
        raise ConfigError(f"{node_name}: {err.args[0] if err.args else err}{hint}") from err

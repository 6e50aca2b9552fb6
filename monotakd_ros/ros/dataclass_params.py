"""ROS parameters declared from a config dataclass, and the dataclass built back from them.

One source for every setting: a node's parameter names, types, defaults, descriptions and
ranges come from the frozen dataclass the core uses (``configuration.bounded`` ranges and
``help`` texts), and ``config_from_node`` builds that dataclass back through the strict loader,
so a parameter obeys exactly the checks of a YAML key.

Values a ROS parameter cannot hold are represented as follows:

- a nested dataclass field becomes dotted parameters (``train.lr``), defaulting to the values
  of the field's default instance; its fields left out by ``select`` keep those values;
- a required field, an empty-array default and an optional non-path field (``X | None``)
  are declared with their type but without a value: not set means the dataclass default
  (``None``), or, for a required field, an error naming the parameter;
- an optional path (``Path | None``) is a string whose empty value means "not set" (paths
  only, where "" is never a meaningful value);
- a ``dict[str, V]`` field takes its keys from the fields of a dataclass given in
  ``entries`` (``train.distill_overrides.imd_weight``), each declared without a value: keys
  not set are not in the dict.
"""

from __future__ import annotations

import array
import dataclasses
import math
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from monotakd_ros.configuration import (
    HELP_METADATA_KEY,
    RANGE_METADATA_KEY,
    Range,
    dataclass_from_dotted,
)
from monotakd_ros.errors import ConfigError

T = TypeVar("T")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALAR_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
                 float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING,
                 Path: Parameter.Type.STRING}
_ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY,
                Path: Parameter.Type.STRING_ARRAY}


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter of a config field: name, type, default (None: no value) and text."""

    name: str  # dotted path of the field, e.g. "train.lr"
    type: Parameter.Type
    default: Any  # None: declared with its type but without a value
    description: str
    range: Range | None = None
    empty_is_none: bool = False  # Path | None: "" stands for None
    required: bool = False

    def descriptor(self) -> ParameterDescriptor:
        """The parameter descriptor: type, description and (for numbers) the range."""
        descriptor = ParameterDescriptor(name=self.name, type=self.type.value,
                                         description=self.description)
        if self.range is not None and self.type == Parameter.Type.INTEGER:
            descriptor.integer_range = [_integer_range(self.range)]
        elif self.range is not None and self.type == Parameter.Type.DOUBLE:
            descriptor.floating_point_range = [_floating_point_range(self.range)]
        return descriptor

    def declared_value(self) -> Any:
        """What ``declare_parameter`` gets: the default, or the type when there is none."""
        return self.type if self.default is None else self.default


def _integer_range(rule: Range) -> IntegerRange:
    low = (math.ceil(rule.ge) if rule.ge is not None
           else math.floor(rule.gt) + 1 if rule.gt is not None else _INT64_MIN)
    high = (math.floor(rule.le) if rule.le is not None
            else math.ceil(rule.lt) - 1 if rule.lt is not None else _INT64_MAX)
    step = rule.multiple_of if rule.multiple_of and low % rule.multiple_of == 0 else 0
    return IntegerRange(from_value=low, to_value=high, step=step)


def _floating_point_range(rule: Range) -> FloatingPointRange:
    # ROS ranges are inclusive: an open end (gt/lt) is checked by the dataclass itself.
    low = rule.ge if rule.ge is not None else rule.gt if rule.gt is not None else -math.inf
    high = rule.le if rule.le is not None else rule.lt if rule.lt is not None else math.inf
    return FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)


def _has_range(rule: Range | None) -> bool:
    return rule is not None and any(
        bound is not None for bound in (rule.ge, rule.gt, rule.le, rule.lt))


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) of ``X | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return options[0], True
    return hint, False


def _parameter_type(hint: Any, name: str) -> tuple[Parameter.Type, str]:
    """ROS type of a field type, and a note for the description (Literal choices)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return _SCALAR_TYPES[type(args[0])], "one of: " + " | ".join(str(a) for a in args)
    if origin in (tuple, list):
        inner = {a for a in args if a is not Ellipsis} or {str}
        if len(inner) == 1 and next(iter(inner)) in _ARRAY_TYPES:
            return _ARRAY_TYPES[next(iter(inner))], ""
    if hint in _SCALAR_TYPES:
        return _SCALAR_TYPES[hint], ""
    raise TypeError(f"{name}: no ROS parameter type for {hint!r}")


def _field_default(field: dataclasses.Field, owner: Any) -> Any:
    """The field's value in ``owner`` (a default instance) or its declared default."""
    if owner is not None:
        return getattr(owner, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _ros_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_ros_value(v) for v in value]
    return value


def _describe(text: str, note: str, rule: Range | None, empty_is_none: bool) -> str:
    parts = [text] if text else []
    if note:
        parts.append(note)
    if _has_range(rule):
        parts.append(f"must {rule.describe()}")  # type: ignore[union-attr]
    if empty_is_none and "empty:" not in text:
        parts.append("empty: not set")
    return "; ".join(parts)


def parameter_specs(cls: type, *, select: Mapping[str, Collection[str]] | None = None,
                    entries: Mapping[str, type] | None = None,
                    descriptions: Mapping[str, str] | None = None,
                    prefix: str = "", owner: Any = None) -> list[ParameterSpec]:
    """Parameter specs of every field of ``cls`` (nested dataclasses as dotted names).

    ``select`` limits a nested field (dotted name) to some of its fields; ``entries`` gives
    the key dataclass of a ``dict`` field; ``descriptions`` adds texts (dotted names) for
    fields of classes that carry no ``help`` metadata.
    """
    select, entries, descriptions = select or {}, entries or {}, descriptions or {}
    hints = typing.get_type_hints(cls)
    specs: list[ParameterSpec] = []
    for field in dataclasses.fields(cls):
        name = f"{prefix}{field.name}"
        if prefix[:-1] in select and field.name not in select[prefix[:-1]]:
            continue
        hint, optional = _unwrap_optional(hints[field.name])
        default = _field_default(field, owner)
        text = field.metadata.get(HELP_METADATA_KEY) or descriptions.get(name, "")
        if dataclasses.is_dataclass(hint):
            nested_owner = None if default is dataclasses.MISSING else default
            specs += parameter_specs(hint, select=select, entries=entries,
                                     descriptions=descriptions, prefix=f"{name}.",
                                     owner=nested_owner)
            continue
        if typing.get_origin(hint) is dict:
            specs += _entry_specs(name, entries, descriptions)
            continue
        kind, note = _parameter_type(hint, name)
        rule = field.metadata.get(RANGE_METADATA_KEY)
        empty_is_none = optional and hint is Path
        value = None if default is dataclasses.MISSING or default is None else default
        if empty_is_none and value is None:
            value = ""
        if isinstance(value, (tuple, list)) and len(value) == 0:
            value = None  # an empty array has no ROS type: declared without a value
        specs.append(ParameterSpec(name, kind, _ros_value(value),
                                   _describe(text, note, rule, empty_is_none), rule,
                                   empty_is_none, required=default is dataclasses.MISSING))
    unknown = sorted(set(descriptions) - {spec.name for spec in specs} - set(entries))
    if unknown and not prefix:
        raise KeyError(f"descriptions name no parameter of {cls.__name__}: {unknown}")
    return specs


def _entry_specs(name: str, entries: Mapping[str, type],
                 descriptions: Mapping[str, str]) -> list[ParameterSpec]:
    """One parameter without a value per scalar field of the key class of dict field ``name``."""
    if name not in entries:
        raise TypeError(f"{name}: a dict field needs its key class in entries")
    key_class = entries[name]
    hints = typing.get_type_hints(key_class)
    specs = []
    for field in dataclasses.fields(key_class):
        if hints[field.name] not in (bool, int, float):
            continue
        kind, _ = _parameter_type(hints[field.name], field.name)
        rule = field.metadata.get(RANGE_METADATA_KEY)
        text = f"{descriptions.get(name, 'over the preset')}: {key_class.__name__}" \
            f".{field.name}; not set: the preset's value"
        specs.append(ParameterSpec(f"{name}.{field.name}", kind, None,
                                   _describe(text, "", rule, False), rule))
    return specs


def config_from_values(cls: type[T], specs: list[ParameterSpec], values: Mapping[str, Any],
                       where: str) -> T:
    """Config ``cls`` from parameter values by dotted name; missing names keep the defaults."""
    known = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown}")
    missing = [spec.name for spec in specs
               if spec.required and values.get(spec.name) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: required parameter(s) not set: "
                          + ", ".join(f"{name} ({known[name].description})" for name in missing))
    given = {name: list(value) if isinstance(value, (tuple, list, array.array)) else value
             for name, value in values.items() if value is not None}
    return dataclass_from_dotted(cls, given, where)


def declare_parameters(node: Node, specs: list[ParameterSpec]) -> None:
    """Declare every spec on ``node`` (wrap in ``param_checks.parameter_type_errors``)."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.declared_value(), spec.descriptor())


def config_from_node(node: Node, cls: type[T], specs: list[ParameterSpec]) -> T:
    """Config ``cls`` built from the node's current values of ``specs`` (declared before)."""
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            continue  # declared without a value and not given: the dataclass default applies
    return config_from_values(cls, specs, values, node.get_name())

"""Strict YAML → frozen dataclass loading; unknown keys, bad types and bad values name the key.

Numeric fields declare their allowed values once, with ``bounded(default, ge=..., lt=...)``
(dataclass field metadata). The loader checks them with the full key path, and every config's
``__post_init__`` calls ``check_fields`` so that configs built in code obey the same ranges.
Floats must be finite unless a field says ``allow_nonfinite=True``. Dataclasses without any
``bounded`` field are data records (checkpoint metadata), which the loader does not check.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from monotakd_ros.errors import ConfigError

T = TypeVar("T")

RANGE_METADATA_KEY = "monotakd_range"
HELP_METADATA_KEY = "monotakd_help"  # one-line description (ROS parameter descriptions)
_FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.2 floats: PyYAML's YAML 1.1 pattern wants a dot and a signed exponent, so "1e-3" and
# "1.0e3" would load as strings. Sexagesimal "1:30.5" (YAML 1.1 only) is no longer a number.
_FLOAT_PATTERN = re.compile(r"""^(?:
     [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)
    )$""", re.VERBOSE)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-3`` is a number); used for every read."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_PATTERN, list("-+0123456789."))


def parse_yaml(text: str, source: str | Path = "<text>") -> Any:
    """Python data of a YAML document (safe types only); ``source`` names it in errors."""
    try:
        return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: invalid YAML: {err}") from err


def read_yaml(path: Path) -> Any:
    """Python data of a YAML file; unreadable files and bad YAML raise ConfigError."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config file ({err})") from err
    return parse_yaml(text, path)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a non-empty mapping at its top level.

    An empty file (or one holding only comments) is an error, not "all defaults": it is far
    more often a wrong or truncated file than a wish. Write ``{}`` to mean all defaults.
    """
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty (no keys); write '{{}}' to mean all "
                          "defaults")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


@contextmanager
def errors_naming(source: str | Path) -> Iterator[None]:
    """Prefix a ConfigError that does not name ``source`` (a cross-field check) with it."""
    try:
        yield
    except ConfigError as err:
        if str(source) in str(err):
            raise
        raise ConfigError(f"{source}: {err}") from err


@dataclass(frozen=True)
class Range:
    """Allowed values of a number, or of every number inside a tuple, list or dict field."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    multiple_of: int | None = None
    allow_nonfinite: bool = False

    def describe(self) -> str:
        """The rule as the end of "must ...", e.g. "lie in [0, 1)" or "be > 0"."""
        low = (f"[{self.ge:g}" if self.ge is not None
               else f"({self.gt:g}" if self.gt is not None else None)
        high = (f"{self.le:g}]" if self.le is not None
                else f"{self.lt:g})" if self.lt is not None else None)
        if low is not None and high is not None:
            text = f"lie in {low}, {high}"
        elif low is not None:
            text = f"be {'>=' if self.ge is not None else '>'} {low[1:]}"
        elif high is not None:
            text = f"be {'<=' if self.le is not None else '<'} {high[:-1]}"
        else:
            text = "be a number"
        if self.multiple_of is not None:
            text += f" and a multiple of {self.multiple_of}"
        return text

    def problem(self, value: float) -> str | None:
        """Why ``value`` breaks this range ("must ..."), or None when it is allowed."""
        if not math.isfinite(value):
            return None if self.allow_nonfinite else "must be finite"
        inside = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                  and (self.le is None or value <= self.le)
                  and (self.lt is None or value < self.lt))
        if self.multiple_of is not None:
            inside = inside and value % self.multiple_of == 0
        return None if inside else f"must {self.describe()}"


_ANY_FINITE = Range()


def bounded(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, multiple_of: int | None = None,
            allow_nonfinite: bool = False, help: str = "") -> Any:
    """A dataclass field whose numbers (scalar or each item) must lie in the given range."""
    rule = Range(ge=ge, gt=gt, le=le, lt=lt, multiple_of=multiple_of,
                 allow_nonfinite=allow_nonfinite)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={RANGE_METADATA_KEY: rule, HELP_METADATA_KEY: help})


def described(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
              help: str) -> Any:
    """A dataclass field (no range) with a one-line description for ROS parameters."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={HELP_METADATA_KEY: help})


def field_range(cls: type, name: str) -> Range:
    """The declared range of field ``name`` of config class ``cls`` (any finite number if none).

    The ROS parameter layer can turn it into parameter descriptors.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get(RANGE_METADATA_KEY, _ANY_FINITE)
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def declares_ranges(cls: type) -> bool:
    """Whether ``cls`` is a checked config (some field uses ``bounded``), not a data record.

    Records such as checkpoint metadata may legitimately hold NaN (a diverged loss); only
    configs are checked by the loader.
    """
    return any(RANGE_METADATA_KEY in f.metadata for f in dataclasses.fields(cls))


def _numbers(value: Any, key: str) -> Iterator[tuple[str, float]]:
    """(key, number) of every number in ``value``; nested dataclasses check themselves."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{key}[{index}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, f"{key}.{name}")


def check_value(field: dataclasses.Field, value: Any, key: str) -> None:
    """Raise ConfigError naming ``key`` when a number in ``value`` breaks the field's range."""
    rule = field.metadata.get(RANGE_METADATA_KEY, _ANY_FINITE)
    for item_key, number in _numbers(value, key):
        problem = rule.problem(number)
        if problem is not None:
            raise ConfigError(f"{item_key}: {problem}, got {number!r}")


def check_fields(config: Any, where: str) -> None:
    """Check every field of ``config`` against its range; ``where`` prefixes keys (``train``)."""
    for f in dataclasses.fields(config):
        check_value(f, getattr(config, f.name), f"{where}.{f.name}")


def dataclass_from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {unknown}; allowed: {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    checked = declares_ranges(cls)
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key)
        if checked:
            check_value(fields[name], kwargs[name], key)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from err
    except ValueError as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from err


def dataclass_from_dotted(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from flat parameter values (``train.lr``) or nested mappings.

    The convention of ROS parameters, which cannot be null: an empty string in a
    ``Path | None`` field means None; in a ``Path`` field or a list of paths it is an error.
    A nested dataclass field with a default starts from that default instance's values, so
    ``train.lr`` alone keeps the other fields of the default ``train``.
    """
    data: dict[str, Any] = {}
    for key, value in values.items():
        *heads, last = str(key).split(".")
        level = data
        for depth, head in enumerate(heads):
            level = level.setdefault(head, {})
            if not isinstance(level, dict):
                raise ConfigError(f"{'.'.join(heads[:depth + 1])}: given both as a value and "
                                  f"as {key!r}")
        level[last] = _merged(level[last], value) if isinstance(level.get(last), dict) \
            and isinstance(value, dict) else value
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{where}.{f.name}" if where else f.name
        if hints[f.name] == (Path | None) and data.get(f.name) == "":
            data[f.name] = None
        elif hints[f.name] is Path and data.get(f.name) == "":
            raise ConfigError(f"{key}: empty path")
        elif typing.get_origin(hints[f.name]) is tuple and Path in typing.get_args(
                hints[f.name]) and isinstance(data.get(f.name), (list, tuple)):
            empty = [i for i, item in enumerate(data[f.name]) if item == ""]
            if empty:
                raise ConfigError(f"{key}[{empty[0]}]: empty path")
        elif dataclasses.is_dataclass(hints[f.name]) and isinstance(data.get(f.name), dict):
            default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else f.default)
            if dataclasses.is_dataclass(default):
                data[f.name] = _merged(dataclasses.asdict(default), data[f.name])
    return dataclass_from_dict(cls, data, where)


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update``'s keys replaced, mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and value:
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data view of a (nested) config dataclass, suitable for YAML or JSON."""
    result = dataclasses.asdict(obj)
    return _plain(result)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: value {value!r} matches none of {hint}: {errors}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            items = [_coerce(a, v, f"{key}[{i}]") for i, (a, v) in pairs]
        else:
            inner = args[0] if args else Any
            items = [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(hint):
        return dataclass_from_dict(hint, value, key)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    return value

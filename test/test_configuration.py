"""Specification of monotakd_ros.configuration: YAML numbers, declared ranges, empty files."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monotakd_ros.configuration import (
    Range,
    dataclass_from_dict,
    dataclass_to_dict,
    field_range,
    load_yaml_mapping,
    parse_yaml,
)
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.distill.config import DistillConfig
from monotakd_ros.distiller.run_config import DistillerConfig, distiller_config_from_values
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import ModelConfig, PostprocessConfig, load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


# --- numbers in YAML ------------------------------------------------------------------------

def test_exponent_floats_read_as_numbers() -> None:
    """PyYAML's YAML 1.1 resolver reads 1e-3 and 1.0e3 as strings; ours reads YAML 1.2."""
    data = parse_yaml("a: 1e-3\nb: 1.0e3\nc: 2E5\nd: -.5e-1\ne: 1_000.5\nf: 7\ng: 1e\nh: v1e3\n")
    assert data == {"a": 0.001, "b": 1000.0, "c": 200000.0, "d": -0.05, "e": 1000.5, "f": 7,
                    "g": "1e", "h": "v1e3"}
    assert isinstance(data["f"], int)


def test_lr_1e_minus_3_in_a_train_yaml(tmp_path: Path) -> None:
    cfg = load_train_config(write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 5E-2\n"))
    assert (cfg.lr, cfg.weight_decay) == (0.001, 0.05)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml: invalid YAML"):
        load_yaml_mapping(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read config file"):
        load_yaml_mapping(tmp_path / "absent.yaml")
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")
    with pytest.raises(ConfigError, match=r"binary\.yaml: cannot read config file"):
        load_yaml_mapping(path)


# --- empty files ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_model_yaml_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml: the file is empty .*write '\{\}'"):
        load_model_config(write(tmp_path, text))


def test_explicit_empty_mapping_means_defaults(tmp_path: Path) -> None:
    assert load_model_config(write(tmp_path, "{}\n")) == ModelConfig()


# --- declared ranges, through the loader with the full key ------------------------------------

MODEL_CASES = [
    ("depth: {max_m: .inf}", r"model\.depth\.max_m: must be finite, got inf"),
    ("depth: {min_m: .nan}", r"model\.depth\.min_m: must be finite, got nan"),
    ("bev_backbone: {layer_nums: [-1, 5]}", r"model\.bev_backbone\.layer_nums\[0\]: must be >= 0"),
    ("postprocess: {score_threshold: 2.0}",
     r"model\.postprocess\.score_threshold: must lie in \[0, 1\), got 2\.0"),
    ("postprocess: {max_detections: -1}", r"model\.postprocess\.max_detections: must be > 0"),
    ("image: {input_hw: [100, 640]}",
     r"model\.image\.input_hw\[0\]: must be >= 32 and a multiple of 32, got 100"),
    ("image: {input_hw: [192, 650]}", r"model\.image\.input_hw\[1\]: .*multiple of 32, got 650"),
    ("grid: {cell_m: -0.32}", r"model\.grid\.cell_m: must be > 0"),
    ("head: {anchors: [{class_name: Car, size_lwh_m: [3.9, 1.6, .nan], bottom_z_m: -1.78, "
     "match_iou: 0.6, unmatch_iou: 0.45}]}",
     r"model\.head\.anchors\[0\]\.size_lwh_m\[2\]: must be finite"),
    ("image_channels: 0", r"model\.image_channels: must be > 0, got 0"),
    ("bev_backbone: {layer_nums: [], layer_strides: [], num_filters: [], "
     "upsample_strides: [], upsample_filters: []}", r" bev_backbone: need at least one block"),
]


@pytest.mark.parametrize(("text", "match"), MODEL_CASES)
def test_model_values_out_of_range_name_file_and_key(tmp_path: Path, text: str,
                                                     match: str) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml:" + match):
        load_model_config(write(tmp_path, text + "\n"))


TRAIN_CASES = [
    ("lr: .nan", r"train\.lr: must be finite, got nan"),
    ("grad_clip: .nan", r"train\.grad_clip: must be finite, got nan"),
    ("grad_clip: -1.0", r"train\.grad_clip: must be >= 0"),
    ("betas: [0.9, 1.0]", r"train\.betas\[1\]: must lie in \[0, 1\), got 1\.0"),
    ("seed: -3", r"train\.seed: must be >= 0"),
    ("detection: {focal_alpha: 1.5}", r"train\.detection\.focal_alpha: must lie in \[0, 1\]"),
    ("distill_overrides: {cmrd_weight: .inf}", r"train\.distill_overrides\.cmrd_weight: must "
                                                r"be finite"),
]


@pytest.mark.parametrize(("text", "match"), TRAIN_CASES)
def test_train_values_out_of_range_name_file_and_key(tmp_path: Path, text: str,
                                                     match: str) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml:" + match):
        load_train_config(write(tmp_path, text + "\n"))


def test_distiller_values_out_of_range_name_the_key() -> None:
    base = {"out_dir": "run", "teacher": "t", "assistant": "a", "bags": ["b"]}
    with pytest.raises(ConfigError, match=r"distiller\.slop_s: must be finite, got nan"):
        distiller_config_from_values({**base, "slop_s": math.nan})
    with pytest.raises(ConfigError, match=r"distiller\.train\.lr: must be finite, got inf"):
        distiller_config_from_values({**base, "train.lr": math.inf})


# --- every float field of every config refuses NaN, built in code as well -------------------

def distiller_config() -> DistillerConfig:
    return DistillerConfig(out_dir=Path("run"), teacher=Path("t"), assistant=Path("a"),
                           bags=(Path("b"),))


def float_slots(obj: Any) -> Iterator[tuple[Any, str, Any]]:
    """(config object, field name, value with one float made NaN) for every float it holds."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from float_slots(value)
        elif isinstance(value, float):
            yield obj, f.name, math.nan
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    yield from float_slots(item)
                elif isinstance(item, float):
                    yield obj, f.name, value[:index] + (math.nan,) + value[index + 1:]
                elif isinstance(item, tuple) and item and isinstance(item[0], float):
                    row = (math.nan,) + item[1:]
                    yield obj, f.name, value[:index] + (row,) + value[index + 1:]


ROOT_CONFIGS = [ModelConfig(), TrainConfig(), DistillConfig(), SynthConfig(), distiller_config()]


def test_every_float_field_refuses_nan_when_built_in_code() -> None:
    slots = [slot for config in ROOT_CONFIGS for slot in float_slots(config)]
    assert len(slots) > 80  # every float of five config trees (ModelConfig alone has ~50)
    accepted = []
    for obj, name, bad in slots:
        try:
            dataclasses.replace(obj, **{name: bad})
        except ConfigError as err:
            assert "must be finite" in str(err) and name in str(err), str(err)
        else:
            accepted.append(f"{type(obj).__name__}.{name}")
    assert accepted == []


def leaf_paths(data: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths to every float leaf of plain (dict / list) config data."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from leaf_paths(value, (*path, index))
    elif isinstance(data, float):
        yield path


def with_leaf(data: Any, path: tuple, value: Any) -> Any:
    copy = json.loads(json.dumps(data))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_loader_refuses_inf_in_every_float_and_names_the_key(cls: type) -> None:
    plain = dataclass_to_dict(cls())
    paths = list(leaf_paths(plain))
    assert len(paths) > 15
    for path in paths:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        with pytest.raises(ConfigError, match=r"^cfg" + key.replace(".", r"\.").replace(
                "[", r"\[").replace("]", r"\]") + r": must be finite, got -inf$"):
            dataclass_from_dict(cls, with_leaf(plain, path, -math.inf), where="cfg")


# --- what ships still loads -------------------------------------------------------------------

def test_shipped_configs_and_default_checkpoint_config_load() -> None:
    for path in sorted((ROOT / "config" / "models").glob("*.yaml")):
        load_model_config(path)
    for path in sorted((ROOT / "config" / "train").glob("*.yaml")):
        load_train_config(path)
    meta = json.loads((ROOT / "models" / "default_student" / "meta.json").read_text())
    cfg = dataclass_from_dict(ModelConfig, meta["model_config"], where="meta.json:model")
    assert cfg.image.input_hw == (192, 640)


def test_ranges_are_readable_for_parameter_descriptors() -> None:
    assert field_range(PostprocessConfig, "score_threshold") == Range(ge=0, lt=1)
    assert field_range(PostprocessConfig, "score_threshold").describe() == "lie in [0, 1)"
    assert field_range(TrainConfig, "lr").describe() == "be > 0"
    assert field_range(TrainConfig, "device") == Range()  # no bounds: any finite number
    with pytest.raises(KeyError, match="no field 'lrate'"):
        field_range(TrainConfig, "lrate")


def test_data_records_without_ranges_may_hold_nan() -> None:
    """Checkpoint metadata is a record, not a config: a diverged loss in it must still load."""

    @dataclasses.dataclass(frozen=True)
    class Record:
        step: int
        metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    record = dataclass_from_dict(Record, {"step": 3, "metrics": {"loss": math.nan}})
    assert record.step == 3 and math.isnan(record.metrics["loss"])

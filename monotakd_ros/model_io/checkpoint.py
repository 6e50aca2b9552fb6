"""Self-describing, pickle-free checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is either a directory::

    model.safetensors       model weights (state_dict keys)
    meta.json               CheckpointMeta: stage, model config, input spec (image size,
                            normalisation, class names), anchors, code version, step, metrics
    optimizer.safetensors   optional: optimizer tensors; the rest of its state_dict as JSON in
                            the safetensors header
    trainer_state.json      optional: step, epoch, RNG snapshot, scheduler state

or a single ``*.safetensors`` file (weights only) whose header holds the text of ``meta.json``.
Nothing here unpickles: tensors come from safetensors, structure from JSON.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from safetensors.torch import load as tensors_from_safetensors_bytes
from torch import nn

from monotakd_ros import __version__
from monotakd_ros.configuration import dataclass_from_dict, dataclass_to_dict
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io.input_spec import InputSpec

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
META_FILE = "meta.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
_META_HEADER_KEY = "monotakd_meta"  # single-file checkpoints: meta.json text in the header
_STRUCTURE_HEADER_KEY = "structure"  # optimizer.safetensors: state_dict layout as JSON
_LISTED_DIFFERENCES = 5


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint is: enough to rebuild the model and feed it images without the config."""

    stage: str  # "teacher" | "ta" | "student"
    model_config: dict[str, Any]  # plain data, e.g. configuration.dataclass_to_dict(cfg)
    input_spec: InputSpec  # image size, mean/std, class names, point-cloud range
    anchors: list[Any] = field(default_factory=list)  # plain data, one entry per class
    step: int = 0
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    code_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in head order."""
        return self.input_spec.class_names


@dataclass(frozen=True)
class TrainState:
    """Where training stood: resume from here to continue the exact same run."""

    step: int
    epoch: int
    rng: dict[str, Any] = field(default_factory=dict)  # training.rng_state.capture_rng_state()
    scheduler: dict[str, Any] | None = None  # lr_scheduler.state_dict(), if one is used
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: Path, model: nn.Module, meta: CheckpointMeta,
                    optimizer: torch.optim.Optimizer | None = None,
                    train_state: TrainState | Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically: a directory, or one file if ``path`` ends in .safetensors."""
    path = Path(path)
    try:
        meta_text = json.dumps(dataclass_to_dict(meta), indent=2, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: metadata is not plain JSON data ({err})") from err
    weights = _storable_tensors(model.state_dict())
    if path.suffix == ".safetensors":
        if optimizer is not None or train_state is not None:
            raise CheckpointError(f"{path}: a single-file checkpoint holds weights only; "
                                  "save training state to a directory path")
        _write_atomically(path, lambda tmp: _save_tensors(
            weights, tmp, {"format": "pt", _META_HEADER_KEY: meta_text}))
        return path

    def write_directory(tmp: Path) -> None:
        tmp.mkdir()
        _save_tensors(weights, tmp / MODEL_FILE, {"format": "pt"})
        (tmp / META_FILE).write_text(meta_text + "\n")
        if optimizer is not None:
            tensors: dict[str, torch.Tensor] = {}
            structure = encode_plain(optimizer.state_dict(), tensors, "optimizer")
            _save_tensors(_storable_tensors(tensors), tmp / OPTIMIZER_FILE,
                          {"format": "pt", _STRUCTURE_HEADER_KEY: json.dumps(structure)})
        if train_state is not None:
            state = (train_state if isinstance(train_state, TrainState)
                     else _train_state_from_data(train_state, path))
            encoded = encode_plain(dataclasses.asdict(state), None, "trainer_state")
            (tmp / TRAINER_STATE_FILE).write_text(json.dumps(encoded, indent=1) + "\n")

    _write_atomically(path, write_directory)
    return path


def load_checkpoint_meta(path: Path) -> CheckpointMeta:
    """Read and validate a checkpoint's metadata (no tensors are loaded)."""
    path = Path(path)
    if path.is_dir():
        source = path / META_FILE
        try:
            text = source.read_text()
        except OSError as err:
            raise CheckpointError(f"{source}: cannot read checkpoint metadata "
                                  f"({err.strerror})") from err
    else:
        source = _existing_weights_file(path)
        text = _read_header(source).get(_META_HEADER_KEY)
        if text is None:
            raise CheckpointError(f"{source}: safetensors header has no '{_META_HEADER_KEY}' "
                                  "entry; not a monotakd_ros checkpoint")
    data = _parse_json(text, source)
    try:
        meta = dataclass_from_dict(CheckpointMeta, data, where=str(source))
    except ConfigError as err:
        raise CheckpointError(f"invalid checkpoint metadata: {err}") from err
    if meta.format_version > FORMAT_VERSION:
        raise CheckpointError(f"{source}: format_version {meta.format_version} is newer than "
                              f"this code reads ({FORMAT_VERSION}); upgrade monotakd_ros")
    if meta.code_version != __version__:
        logger.warning("%s was written by monotakd_ros %s, this is %s", source,
                       meta.code_version, __version__)
    return meta


def load_model_weights(path: Path, model: nn.Module,
                       strict: bool = True) -> tuple[list[str], list[str]]:
    """Load weights into ``model``; returns (missing, unexpected) keys, which strict forbids."""
    source = _existing_weights_file(Path(path))
    tensors = _read_tensors(source)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{key}: checkpoint {tuple(tensors[key].shape)} vs model "
                  f"{tuple(expected[key].shape)}"
                  for key in sorted(set(expected) & set(tensors))
                  if tensors[key].shape != expected[key].shape]
    problems = [f"shape mismatches {_first(mismatched)}"] if mismatched else []
    if strict and missing:
        problems.append(f"missing keys {_first(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys {_first(unexpected)}")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {type(model).__name__}: "
                              + "; ".join(problems))
    model.load_state_dict(tensors, strict=False)
    return missing, unexpected


def load_optimizer_state(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore an optimizer saved with ``save_checkpoint`` (same parameter groups and sizes)."""
    source = Path(path) / OPTIMIZER_FILE
    if not source.is_file():
        raise CheckpointError(f"{source}: no optimizer state in this checkpoint")
    text = _read_header(source).get(_STRUCTURE_HEADER_KEY)
    if text is None:
        raise CheckpointError(f"{source}: header lacks the '{_STRUCTURE_HEADER_KEY}' entry")
    state_dict = decode_plain(_parse_json(text, source), _read_tensors(source), source)
    saved_sizes = [len(group["params"]) for group in state_dict["param_groups"]]
    current_sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_sizes != current_sizes:
        raise CheckpointError(f"{source}: parameters per group {saved_sizes} differ from the "
                              f"optimizer's {current_sizes}")
    try:
        optimizer.load_state_dict(state_dict)
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"{source}: optimizer state does not fit "
                              f"{type(optimizer).__name__}: {err}") from err


def load_train_state(path: Path) -> TrainState:
    """Read ``trainer_state.json`` of a checkpoint directory."""
    source = Path(path) / TRAINER_STATE_FILE
    try:
        text = source.read_text()
    except OSError as err:
        raise CheckpointError(f"{source}: cannot read trainer state ({err.strerror})") from err
    return _train_state_from_data(decode_plain(_parse_json(text, source), {}, source), source)


def encode_plain(value: Any, tensors: dict[str, torch.Tensor] | None, key: str) -> Any:
    """JSON-safe form of nested data; tensors go to ``tensors`` (or inline if it is None).

    Tuples, non-string dict keys, numpy arrays and tensors are tagged so that
    ``decode_plain`` gives back exactly the same types.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        if tensors is None:
            blob = safetensors.torch.save({"t": value.detach().cpu().contiguous()})
            return {"__tensor_b64__": base64.b64encode(blob).decode("ascii")}
        tensors[key] = value.detach()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape),
                                "data": value.ravel().tolist()}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode_plain(v, tensors, f"{key}.{i}")
                              for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_plain(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_plain(v, tensors, f"{key}.{k}") for k, v in value.items()}
        return {"__items__": [[encode_plain(k, None, key), encode_plain(v, tensors, f"{key}.{k}")]
                              for k, v in value.items()]}
    raise CheckpointError(f"{key}: cannot store a value of type {type(value).__name__}")


def decode_plain(value: Any, tensors: Mapping[str, torch.Tensor], source: Path) -> Any:
    """Inverse of ``encode_plain``; ``source`` names the file in error messages."""
    if isinstance(value, list):
        return [decode_plain(v, tensors, source) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith("__"):
        return {k: decode_plain(v, tensors, source) for k, v in value.items()}
    (tag, body), = value.items()
    try:
        if tag == "__tuple__":
            return tuple(decode_plain(v, tensors, source) for v in body)
        if tag == "__items__":
            return {decode_plain(k, tensors, source): decode_plain(v, tensors, source)
                    for k, v in body}
        if tag == "__tensor__":
            return tensors[body]
        if tag == "__tensor_b64__":
            return tensors_from_safetensors_bytes(base64.b64decode(body))["t"]
        if tag == "__ndarray__":
            return np.asarray(body["data"], dtype=np.dtype(body["dtype"])).reshape(body["shape"])
    except (KeyError, TypeError, ValueError, safetensors.SafetensorError) as err:
        raise CheckpointError(f"{source}: unreadable {tag} entry ({err!r})") from err
    raise CheckpointError(f"{source}: unknown tag {tag!r}")


def _train_state_from_data(data: Any, source: Path) -> TrainState:
    try:
        return dataclass_from_dict(TrainState, dict(data), where=str(source))
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"invalid trainer state: {err}") from err


def _storable_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors sharing no memory, as safetensors requires (tied weights)."""
    seen_storages: set[int] = set()
    result = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen_storages.add(tensor.untyped_storage().data_ptr())
        result[key] = tensor
    return result


def _save_tensors(tensors: dict[str, torch.Tensor], target: Path,
                  header: dict[str, str]) -> None:
    safetensors.torch.save_file(tensors, str(target), metadata=header)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write into a hidden sibling, flush it to disk, then swap it in with ``os.replace``.

    Replacing a directory takes two renames; a crash between them leaves the previous
    checkpoint as ``.<name>.old-<token>`` next to the missing path.
    """
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = path.parent / f".{path.name}.tmp-{token}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        for written in (sorted(tmp.iterdir()) if tmp.is_dir() else [tmp]):
            with open(written, "rb") as handle:
                os.fsync(handle.fileno())
        if path.is_dir():
            # os.replace cannot overwrite a non-empty directory: move the old one aside first.
            old = path.parent / f".{path.name}.old-{token}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot write checkpoint ({err})") from err
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _existing_weights_file(path: Path) -> Path:
    source = path / MODEL_FILE if path.is_dir() else path
    if not source.is_file():
        raise CheckpointError(f"{source}: checkpoint not found")
    return source


def _read_header(source: Path) -> dict[str, str]:
    try:
        with safetensors.safe_open(str(source), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (safetensors.SafetensorError, OSError) as err:
        raise CheckpointError(f"{source}: corrupt or unreadable safetensors file "
                              f"({err})") from err


def _read_tensors(source: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(source), device="cpu")
    except (safetensors.SafetensorError, OSError) as err:
        raise CheckpointError(f"{source}: corrupt or unreadable safetensors file "
                              f"({err})") from err


def _parse_json(text: str, source: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{source}: invalid JSON at line {err.lineno} column "
                              f"{err.colno}: {err.msg}") from err


def _first(items: list[str]) -> str:
    listed = ", ".join(items[:_LISTED_DIFFERENCES])
    more = len(items) - _LISTED_DIFFERENCES
    return f"[{listed}]" + (f" (+{more} more)" if more > 0 else "")

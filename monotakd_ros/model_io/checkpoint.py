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

``meta.json`` is written last and carries the sha256 of ``model.safetensors``: metadata that
does not belong to the weights beside it is refused, and so are weights holding NaN or inf.
Directories are written as versions behind an atomically replaced link (``model_io.atomic``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from monotakd_ros import __version__
from monotakd_ros.configuration import dataclass_from_dict, dataclass_to_dict
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.model_io.plain_data import decode_plain, encode_plain

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
    weights_sha256: str = ""  # of model.safetensors; set by save_checkpoint ("" in a file)

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
    meta_text = _meta_text(meta, path)
    weights = _storable_tensors(model.state_dict())
    if path.suffix == ".safetensors":
        if optimizer is not None or train_state is not None:
            raise CheckpointError(f"{path}: a single-file checkpoint holds weights only; "
                                  "save training state to a directory path")
        atomic.write_file(path, lambda tmp: _save_tensors(
            weights, tmp, {"format": "pt", _META_HEADER_KEY: meta_text}), _nbytes(weights))
        return path

    def write_directory(tmp: Path) -> None:
        tmp.mkdir()
        _save_tensors(weights, tmp / MODEL_FILE, {"format": "pt"})
        digest = hashlib.sha256((tmp / MODEL_FILE).read_bytes()).hexdigest()
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
        # Last: a version folder with a meta.json that matches its weights is complete.
        hashed = dataclasses.replace(meta, weights_sha256=digest)
        (tmp / META_FILE).write_text(_meta_text(hashed, path) + "\n")

    atomic.write_directory(path, write_directory, _nbytes(weights))
    return path


def recover_directory(path: Path, needs_train_state: bool = True) -> Path | None:
    """``path`` if it is a complete checkpoint, else the newest complete leftover of its saves.

    Leftovers are the hidden versions and temporaries a kill can leave next to ``path`` (see
    ``model_io.atomic``; ``.NAME.tmp-*``/``.NAME.old-*`` of the earlier two-rename scheme).
    """
    path = Path(path)
    if is_complete_checkpoint(path, needs_train_state):
        return path
    complete = [p for p in atomic.leftovers_of(path)
                if is_complete_checkpoint(p, needs_train_state)]
    if not complete:
        return None
    best = max(complete, key=lambda p: (load_checkpoint_meta(p).step, p.lstat().st_mtime))
    logger.warning("%s is missing or incomplete; using %s, left by an interrupted save", path,
                   best)
    return best


def is_complete_checkpoint(path: Path, needs_train_state: bool = True) -> bool:
    """Whether a directory holds readable metadata, the weights it names and the train state."""
    if not (path.is_dir() and (path / MODEL_FILE).is_file()):
        return False
    try:
        meta = load_checkpoint_meta(path)
        if meta.weights_sha256 and meta.weights_sha256 != _sha256_of(path / MODEL_FILE):
            return False
        if needs_train_state:
            load_train_state(path)
    except CheckpointError:
        return False
    return True


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
    tensors = _read_checked_weights(source)
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


def _read_checked_weights(source: Path) -> dict[str, torch.Tensor]:
    """Weights of a checkpoint, refused if its meta.json names other weights or any is NaN/inf."""
    data = _read_bytes(source)
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError) as err:
        raise CheckpointError(f"{source}: corrupt or unreadable safetensors file "
                              f"({err})") from err
    expected, actual = _recorded_sha256(source), hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise CheckpointError(f"{source.parent / META_FILE}: weights_sha256 {expected[:12]}... "
                              f"does not match {source} ({actual[:12]}...); the metadata "
                              "belongs to other weights")
    # One reduction per tensor; the exact element check only where the sum is not finite.
    not_finite = [key for key, value in sorted(tensors.items())
                  if value.is_floating_point() and not bool(torch.isfinite(value.sum()))
                  and not bool(torch.isfinite(value).all())]
    if not_finite:
        raise CheckpointError(f"{source}: non-finite weights (NaN or inf) in "
                              f"{_first(not_finite)}; the run that wrote them diverged")
    return tensors


def _recorded_sha256(source: Path) -> str | None:
    """The weights hash in the meta.json beside ``source`` (None: single file or legacy)."""
    meta_file = source.parent / META_FILE
    if source.name != MODEL_FILE or not meta_file.is_file():
        return None
    try:
        recorded = json.loads(meta_file.read_text()).get("weights_sha256") or None
    except (OSError, ValueError, AttributeError):
        return None  # load_checkpoint_meta reports unreadable metadata with its own message
    if recorded is None:
        logger.warning("%s has no weights_sha256 (written before it existed); its weights are "
                       "trusted as they are", meta_file)
    return recorded


def _read_bytes(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{source}: cannot read ({err.strerror})") from err


def _sha256_of(source: Path) -> str:
    return hashlib.sha256(_read_bytes(source)).hexdigest()


def _meta_text(meta: CheckpointMeta, path: Path) -> str:
    try:
        return json.dumps(dataclass_to_dict(meta), indent=2, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: metadata is not plain JSON data ({err})") from err


def _nbytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


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

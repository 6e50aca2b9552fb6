"""The frozen-model cache of the student stage: teacher and TA outputs computed once.

The student's losses read, from the frozen models, only F_T and the teacher's head outputs
(class logits, box residuals, direction logits) and the TA's F_TA. They depend on the frame and on
whether it is mirrored, so both flip states of every frame of a prepared split are stored
(entry ``2 * row + flipped``), as fp16 (default) or fp32. Colour jitter is not cached: the TA's
target is its output on the un-jittered image (docs/method.md). The cache is keyed by the
prepared split's key, the model config and the weights of both frozen models.

Size per frame (both flip states, fp16): small.yaml ≈ 5.3 MB, kitti_r50.yaml ≈ 34 MB, which is
≈ 126 GB for KITTI's 3712 training frames: that is why the cache is optional.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.data.prepared.batches import FrameAugmentation, PreparedBatch, PreparedFrames
from monotakd_ros.data.prepared.split_store import build_lock
from monotakd_ros.data.prepared.store import (
    OpenedStore,
    StoreWriter,
    check_free_disk,
    format_bytes,
    open_store,
    remove_stale_temporaries,
    sha256_of_json,
    write_error,
)
from monotakd_ros.errors import DatasetError
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.models.outputs import (
    BevFeatures,
    CameraDetectorOutput,
    CameraFeatures,
    HeadOutput,
    TeacherOutput,
)
from monotakd_ros.training.stages import FrozenModels, FrozenOutputs

LOG = logging.getLogger(__name__)

FROZEN_FORMAT = "frozen-targets-1"
STORAGE_DTYPES = {"fp16": "float16", "fp32": "float32"}


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the names and bytes of the model's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def frozen_cache_key(kind: str, model: torch.nn.Module, split_key: str,
                     model_cfg: ModelConfig, storage: str) -> str:
    """Key of one frozen model's targets: (model weights, prepared split, config, dtype)."""
    return sha256_of_json({"format": FROZEN_FORMAT, "kind": kind, "split": split_key,
                           "storage": storage, "model": dataclass_to_dict(model_cfg),
                           "weights": weights_digest(model)})


def _target_arrays(outputs: FrozenOutputs) -> dict[str, torch.Tensor]:
    """The cached tensors of one batch's frozen outputs, by array name."""
    arrays = {}
    if outputs.teacher is not None:
        head = outputs.teacher.head
        arrays.update(teacher_bev=outputs.teacher.features.bev, teacher_cls=head.cls_logits,
                      teacher_box=head.box_residuals, teacher_dir=head.dir_logits)
    if outputs.assistant is not None:
        arrays["assistant_bev"] = outputs.assistant.features.bev_visual
    return arrays


def targets_per_frame_bytes(frozen: FrozenModels, frames: PreparedFrames, storage: str) -> int:
    """Bytes per frame (both flip states) of the cache, from one frozen forward."""
    sample = _target_arrays(frozen(frames.batch([0], FrameAugmentation.none(1))))
    itemsize = np.dtype(STORAGE_DTYPES[storage]).itemsize
    return 2 * itemsize * sum(t[0].numel() for t in sample.values())


def _build(frozen: FrozenModels, frames: PreparedFrames, folder: Path, key: str, storage: str,
           batch_size: int) -> None:
    count = len(frames)
    per_frame = targets_per_frame_bytes(frozen, frames, storage)
    needed = per_frame * count + (1 << 20)
    check_free_disk(folder.parent, needed, f"the frozen teacher/TA targets ({count} frames x 2 "
                    f"flip states, {format_bytes(per_frame)} per frame)")
    writer = StoreWriter(folder, key)
    try:
        arrays: dict[str, np.memmap] = {}
        progress = tqdm(total=2 * count, desc="frozen targets", unit="frame")
        for flipped in (False, True):
            for start in range(0, count, batch_size):
                rows = list(range(start, min(start + batch_size, count)))
                batch = frames.batch(rows, FrameAugmentation.fixed_flip(len(rows), flipped))
                for name, tensor in _target_arrays(frozen(batch)).items():
                    if name not in arrays:
                        arrays[name] = writer.create(name, STORAGE_DTYPES[storage],
                                                     (2 * count, *tensor.shape[1:]))
                    entries = 2 * np.asarray(rows) + int(flipped)
                    arrays[name][entries] = tensor.float().cpu().numpy()
                progress.update(len(rows))
        progress.close()
        writer.commit({"frames": count, "storage": storage}, *arrays.values())
    except OSError as err:
        writer.abort()
        raise write_error(err, folder, needed, "the frozen teacher/TA targets") from err
    except BaseException:
        writer.abort()
        raise


class CachedFrozenTargets:
    """Stands in for FrozenModels: the frozen outputs of a prepared batch, read by (row, flip).

    One store per frozen model (``teacher``, ``assistant``), so that the CMKD (teacher only),
    IMD (TA only) and TAKD students of one teacher/TA pair share them.
    """

    def __init__(self, stores: dict[str, OpenedStore], device: torch.device,
                 resident: bool) -> None:
        self.stores, self.resident = stores, resident
        self.arrays = {name: array for store in stores.values()
                       for name, array in store.arrays.items()}
        self.device = device
        self.tensors: dict[str, torch.Tensor] = {}
        self.to(device)

    @property
    def nbytes(self) -> int:
        """Bytes of every array read."""
        return sum(store.nbytes for store in self.stores.values())

    def to(self, device: torch.device) -> CachedFrozenTargets:
        """Keep resident arrays (or deliver batches) on ``device``."""
        device = torch.device(device)
        if self.tensors and device == self.device:
            return self  # already resident there
        self.device = device
        if self.resident:
            self.tensors = {name: _resident(array, self.device, name)
                            for name, array in self.arrays.items()}
        return self

    def _entries(self, name: str, entries: torch.Tensor) -> torch.Tensor:
        if self.resident:
            return self.tensors[name][entries.to(self.device)].float()
        rows = entries.cpu().numpy()
        order = np.argsort(rows)  # memory maps read fastest in file order
        gathered = np.empty((len(rows), *self.arrays[name].shape[1:]), np.float32)
        gathered[order] = self.arrays[name][rows[order]]
        return torch.from_numpy(gathered).to(self.device, non_blocking=True)

    def __call__(self, batch: FrameBatch) -> FrozenOutputs:
        """Teacher and TA outputs of the batch's frames in their flip states."""
        if not isinstance(batch, PreparedBatch):
            raise DatasetError("the frozen-target cache needs batches of the prepared split "
                               "(train.data_cache: true)")
        entries = 2 * batch.rows + batch.flipped.long()
        names = self.arrays
        teacher = assistant = None
        if "teacher_bev" in names:
            teacher = TeacherOutput(
                features=BevFeatures(bev=self._entries("teacher_bev", entries)),
                head=HeadOutput(cls_logits=self._entries("teacher_cls", entries),
                                box_residuals=self._entries("teacher_box", entries),
                                dir_logits=self._entries("teacher_dir", entries)))
        if "assistant_bev" in names:
            bev = self._entries("assistant_bev", entries)
            absent = bev.new_zeros((len(batch), 0))  # not cached: never read by the losses
            assistant = CameraDetectorOutput(
                features=CameraFeatures(bev_visual=bev, bev_spatial=absent, bev_fused=absent,
                                        depth_logits=None),
                head=HeadOutput(cls_logits=absent, box_residuals=absent, dir_logits=absent))
        return FrozenOutputs(teacher=teacher, assistant=assistant)


def cached_frozen_targets(frozen: FrozenModels, frames: PreparedFrames, model_cfg: ModelConfig,
                          cache_dir: Path, storage: str = "fp16", resident: bool = False,
                          batch_size: int = 8) -> CachedFrozenTargets:
    """The frozen targets of ``frames``, computed (with a progress bar) unless cached."""
    if storage not in STORAGE_DTYPES:
        raise DatasetError(f"frozen-target storage: expected one of {list(STORAGE_DTYPES)}, "
                           f"got {storage!r}")
    frozen.to(frames.device)
    stores = {}
    for kind, model in (("teacher", frozen.teacher), ("assistant", frozen.assistant)):
        if model is None:
            continue
        key = frozen_cache_key(kind, model, frames.store.key, model_cfg, storage)
        folder = cache_dir / f"{frames.store.folder.name}_{kind}_{key[:12]}"
        alone = FrozenModels(model if kind == "teacher" else None,
                             model if kind == "assistant" else None)
        with build_lock(folder):
            store, reason = open_store(folder, key)
            if store is None:
                LOG.info("computing frozen %s targets into %s: %s", kind, folder, reason)
                remove_stale_temporaries(folder)
                _build(alone, frames, folder, key, storage, batch_size)
                store, reason = open_store(folder, key)
                if store is None:
                    raise DatasetError(f"{folder}: freshly built cache does not open: {reason}")
        LOG.info("frozen %s targets %s: %s (%s per frame, both flip states)", kind, folder,
                 format_bytes(store.nbytes), format_bytes(store.nbytes / len(frames)))
        stores[kind] = store
    return CachedFrozenTargets(stores, frames.device, resident)


def _resident(array: np.ndarray, device: torch.device, name: str) -> torch.Tensor:
    try:
        return torch.from_numpy(np.array(array)).to(device)
    except (RuntimeError, MemoryError) as err:
        raise DatasetError(f"frozen targets {name!r} ({format_bytes(array.nbytes)}) do not fit "
                           f"on {device}: {err}") from err

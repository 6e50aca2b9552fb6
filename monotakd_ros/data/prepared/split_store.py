"""A KITTI object split prepared once for one network input: the dataset cache.

Per frame it stores what every stage reads, already at the network's input size:

- ``images`` (N, 3, H, W) uint8 RGB, resized exactly as ``batch.prepare_image`` does, the rows
  below ``valid_rows`` left 0 (the normalised pad is applied when a batch is built);
- ``P2`` (N, 3, 4) at input resolution, ``T_rect_from_lidar`` (N, 4, 4), ``original_hw``,
  ``scale_xy``;
- the LiDAR depth map as sparse pixels (``depth_pixel`` = row * W + col, ``depth_m``), projected
  as the live path does (field-of-view points, nearest return);
- the teacher's points inside the grid, widened to the mirror image of the y range so that a
  flipped frame keeps every point it would have live;
- boxes and classes before the range filter (applied after the flip, as live).

Variable-length arrays are concatenated with ``*_offsets`` (N + 1). The cache is keyed by the
content of every source file (image, velodyne, calib, label), the frame list, the input spec and
the format version; a fingerprint of (size, mtime) per file skips re-hashing unchanged files.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from monotakd_ros.data.augment import SensorFrame
from monotakd_ros.data.batch import resized_hw
from monotakd_ros.data.datasets import KittiFrameDataset, build_frame_sample
from monotakd_ros.data.kitti.object_dataset import CALIB_DIR, LABEL_DIR, VELODYNE_DIR
from monotakd_ros.data.predictions import kitti_labels_to_lidar_targets
from monotakd_ros.data.prepared.store import (
    MANIFEST,
    OpenedStore,
    StoreWriter,
    check_free_disk,
    format_bytes,
    open_store,
    remove_stale_temporaries,
    sha256_of_files,
    sha256_of_json,
    write_error,
)
from monotakd_ros.errors import DatasetError
from monotakd_ros.model_io.input_spec import InputSpec

LOG = logging.getLogger(__name__)

SPLIT_FORMAT = "prepared-split-1"
_FIXED = {"P2": ("float32", (3, 4)), "T_rect_from_lidar": ("float32", (4, 4)),
          "original_hw": ("int64", (2,)), "scale_xy": ("float32", (2,)),
          "valid_rows": ("int32", ()), "has_labels": ("bool", ())}
_VARIABLE = {"points": "point_offsets", "depth_pixel": "depth_offsets",
             "boxes_lidar": "box_offsets"}  # depth_m shares depth_offsets, classes box_offsets


@dataclass(frozen=True)
class SplitSource:
    """Which frames of which KITTI object root, seen through which input spec."""

    root: Path
    split: str  # ImageSets name, e.g. "train"
    spec: InputSpec
    with_labels: bool = True


def store_folder(cache_dir: Path, source: SplitSource) -> Path:
    """One folder per (data root, split, input size): a new key rebuilds it in place."""
    where = sha256_of_json([str(source.root.resolve()), source.split])[:12]
    height, width = source.spec.input_hw
    return cache_dir / f"split_{source.split}_{where}_{height}x{width}"


def source_files(dataset: KittiFrameDataset) -> list[Path]:
    """Every file the split's frames are read from, in frame order."""
    kitti = dataset.kitti
    files = []
    for frame_id in dataset.frame_ids:
        files += [kitti.image_path(frame_id), kitti.split_dir / VELODYNE_DIR / f"{frame_id}.bin",
                  kitti.split_dir / CALIB_DIR / f"{frame_id}.txt"]
        if dataset.with_labels:
            files.append(kitti.split_dir / LABEL_DIR / f"{frame_id}.txt")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise DatasetError(f"{missing[0]}: source file of the split does not exist "
                           f"({len(missing)} missing)")
    return files


def _fingerprints(files: list[Path], root: Path) -> list[list]:
    return [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _source_digest(files: list[Path], root: Path, folder: Path) -> str:
    """Content digest of the sources; reused from the manifest when no file was touched."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            metadata = json.loads(manifest.read_text())["metadata"]
            if metadata["source_fingerprints"] == _fingerprints(files, root):
                return str(metadata["source_digest"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable manifest: hash the contents, open_store reports the rest
    return sha256_of_files(files, root)


def cache_key(source: SplitSource, frame_ids: list[str], source_digest: str) -> str:
    """Key of a prepared split: format, input spec, frame list and source contents."""
    return sha256_of_json({"format": SPLIT_FORMAT, "spec": asdict(source.spec),
                           "with_labels": source.with_labels, "frames": frame_ids,
                           "sources": source_digest})


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on ``<folder>.lock``: parallel runs (seeds) build a cache only once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resized_image_rgb(image_bgr: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, int]:
    """(3, H, W) uint8 RGB input image (0 below the resized rows) and its number of rows."""
    original_hw = (int(image_bgr.shape[0]), int(image_bgr.shape[1]))
    new_hw = resized_hw(original_hw, spec)
    resized = image_bgr
    if new_hw != original_hw:  # the interpolation rule of batch.prepare_image
        shrinking = new_hw[1] < original_hw[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        resized = cv2.resize(image_bgr, (new_hw[1], new_hw[0]), interpolation=interpolation)
    height, width = spec.input_hw
    rows = min(new_hw[0], height)
    image = np.zeros((3, height, width), dtype=np.uint8)
    image[:, :rows] = resized[:rows, :, ::-1].transpose(2, 0, 1)
    return image, rows


class _FrameRecords(Dataset):
    """One frame's arrays for the cache (runs in DataLoader workers while building)."""

    def __init__(self, dataset: KittiFrameDataset) -> None:
        self.dataset = dataset
        spec = dataset.spec
        y_reach = max(abs(spec.point_range[1]), abs(spec.point_range[4]))
        self.wide_range = (spec.point_range[0], -y_reach, spec.point_range[2],
                           spec.point_range[3], y_reach, spec.point_range[5])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        ds, frame_id = self.dataset, self.dataset.frame_ids[index]
        calib = ds.kitti.calib(frame_id).camera_calib()
        boxes = np.zeros((0, 7), np.float32)
        classes = np.zeros(0, np.int64)
        if ds.with_labels:
            boxes, classes = kitti_labels_to_lidar_targets(ds.kitti.labels(frame_id), calib,
                                                           ds.spec.class_names, None)
        frame = SensorFrame(ds.kitti.image(frame_id), calib, ds.kitti.points(frame_id),
                            boxes, classes)
        wide = InputSpec(input_hw=ds.spec.input_hw, mean=ds.spec.mean, std=ds.spec.std,
                         class_names=ds.spec.class_names, point_range=self.wide_range)
        sample = build_frame_sample(frame_id, frame, wide, ds.with_labels, True)
        image, rows = resized_image_rgb(frame.image_bgr, ds.spec)
        depth_flat = sample.depth_map.reshape(-1)
        pixels = np.flatnonzero(depth_flat).astype(np.int32)
        return {"images": image, "valid_rows": np.int32(rows), "P2": sample.P2,
                "T_rect_from_lidar": sample.T_rect_from_lidar,
                "original_hw": np.asarray(sample.original_hw),
                "scale_xy": np.asarray(sample.scale_xy), "has_labels": ds.with_labels,
                "points": sample.points.astype(np.float32),
                "depth_pixel": pixels, "depth_m": depth_flat[pixels].astype(np.float32),
                "boxes_lidar": np.asarray(boxes, np.float32).reshape(-1, 7),
                "classes": np.asarray(classes, np.int64)}


def _as_is(record: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return record  # keep numpy arrays (the default would convert them to tensors)


def _build(source: SplitSource, dataset: KittiFrameDataset, folder: Path, key: str,
           fingerprints: list[list], digest: str, workers: int) -> None:
    records = _FrameRecords(dataset)
    count = len(records)
    first = records[0]
    per_frame = sum(np.asarray(v).nbytes for v in first.values())
    needed = int(per_frame * count * 1.25) + (1 << 20)
    check_free_disk(folder.parent, needed, f"the prepared split {source.split!r} "
                    f"({count} frames, about {format_bytes(per_frame)} each)")
    writer = StoreWriter(folder, key)
    try:
        images = writer.create("images", "uint8", (count, *first["images"].shape))
        fixed = {n: writer.create(n, dtype, (count, *shape)) for n, (dtype, shape) in
                 _FIXED.items()}
        offsets = {n: [0] for n in _VARIABLE.values()}
        loader = DataLoader(records, batch_size=None, num_workers=workers,
                            collate_fn=_as_is)
        for index, record in enumerate(tqdm(loader, total=count, desc="prepare split",
                                            unit="frame")):
            images[index] = record["images"]
            for name in fixed:
                fixed[name][index] = record[name]
            for name, offset_name in _VARIABLE.items():
                writer.append(name, np.asarray(record[name]))
                offsets[offset_name].append(offsets[offset_name][-1] + len(record[name]))
            writer.append("depth_m", np.asarray(record["depth_m"]))
            writer.append("classes", np.asarray(record["classes"]))
        offset_arrays = []
        for name, values in offsets.items():
            array = writer.create(name, "int64", (count + 1,))
            array[:] = values
            offset_arrays.append(array)
        metadata = {"frame_ids": dataset.frame_ids, "spec": asdict(source.spec),
                    "root": str(source.root), "split": source.split,
                    "source_fingerprints": fingerprints, "source_digest": digest}
        writer.commit(metadata, images, *fixed.values(), *offset_arrays)
    except OSError as err:
        writer.abort()
        raise write_error(err, folder, needed, "the prepared split") from err
    except BaseException:
        writer.abort()
        raise


def prepared_split(source: SplitSource, cache_dir: Path, workers: int = 0) -> OpenedStore:
    """The prepared split, built (with a progress bar) unless a matching cache exists."""
    dataset = KittiFrameDataset(source.root, source.split, source.spec,
                                with_labels=source.with_labels)
    folder = store_folder(cache_dir, source)
    with build_lock(folder):
        files = source_files(dataset)
        fingerprints = _fingerprints(files, source.root)
        digest = _source_digest(files, source.root, folder)
        key = cache_key(source, dataset.frame_ids, digest)
        store, reason = open_store(folder, key)
        if store is not None:
            LOG.info("prepared split %s: %d frames, %s (cached)", folder,
                     len(store.metadata["frame_ids"]), format_bytes(store.nbytes))
            return store
        LOG.info("preparing split %r of %s into %s: %s", source.split, source.root, folder,
                 reason)
        remove_stale_temporaries(folder)
        _build(source, dataset, folder, key, fingerprints, digest, workers)
        store, reason = open_store(folder, key)
        if store is None:
            raise DatasetError(f"{folder}: freshly built cache does not open: {reason}")
        LOG.info("prepared split %s: %d frames, %s (%s per frame)", folder, len(dataset),
                 format_bytes(store.nbytes), format_bytes(store.nbytes / len(dataset)))
        return store

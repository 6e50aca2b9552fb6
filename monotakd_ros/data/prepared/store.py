"""Crash-safe folders of raw memory-mapped arrays, identified by a content key.

A store folder holds one ``<name>.bin`` per array (raw bytes, C order) and ``manifest.json``
with the key, each array's dtype/shape/byte size and free-form metadata. It is written into a
temporary sibling folder, every file is fsynced, the manifest is written last, and the folder is
renamed into place in one step; a reader therefore sees either a complete store or none. A
store whose manifest is missing, whose key differs or whose files have the wrong size (a crash,
a full disk, a hand edit) is reported as unusable and rebuilt by the caller.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monotakd_ros.errors import DatasetError
from monotakd_ros.model_io.atomic import fsync_path

LOG = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_DTYPES = ("uint8", "int32", "int64", "float16", "float32", "bool")  # allow-list, never eval'd
_HASH_CHUNK_BYTES = 1 << 22


def sha256_of_files(paths: Iterable[Path], root: Path) -> str:
    """Digest of the names (relative to ``root``) and full contents of ``paths``."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
        digest.update(b"\1")
    return digest.hexdigest()


def sha256_of_json(value: Any) -> str:
    """Digest of a plain-data value (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def format_bytes(size: float) -> str:
    """Human size, e.g. ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


def check_free_disk(folder: Path, needed_bytes: int, what: str) -> None:
    """DatasetError naming the size when ``folder``'s file system has less free space."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise DatasetError(f"{folder}: {what} needs {format_bytes(needed_bytes)} of disk, only "
                           f"{format_bytes(free)} free; free space or pass another cache folder")


@dataclass(frozen=True)
class ArraySpec:
    """dtype and shape of one stored array."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Byte size of the raw file."""
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64)))


class StoreWriter:
    """Writes a store into a temporary folder; ``commit`` makes it visible atomically."""

    def __init__(self, final_dir: Path, key: str) -> None:
        self.final_dir = final_dir
        self.key = key
        self.tmp_dir = final_dir.with_name(f"{final_dir.name}.tmp-{os.getpid()}")
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir)
        self.tmp_dir.mkdir(parents=True)
        self.arrays: dict[str, ArraySpec] = {}
        self._appended: dict[str, tuple[Any, str, tuple[int, ...], int]] = {}

    def create(self, name: str, dtype: str, shape: tuple[int, ...]) -> np.memmap:
        """A writable fixed-size array (zero-filled)."""
        spec = ArraySpec(_checked_dtype(dtype, name), tuple(int(s) for s in shape))
        self.arrays[name] = spec
        return np.memmap(self.tmp_dir / f"{name}.bin", dtype=spec.dtype, mode="w+",
                         shape=spec.shape)

    def append(self, name: str, rows: np.ndarray) -> None:
        """Append rows to a variable-length array (its row shape fixed by the first call)."""
        if name not in self._appended:
            handle = (self.tmp_dir / f"{name}.bin").open("wb")
            dtype = _checked_dtype(str(rows.dtype), name)
            self._appended[name] = (handle, dtype, tuple(rows.shape[1:]), 0)
        handle, dtype, row_shape, count = self._appended[name]
        if rows.dtype != np.dtype(dtype) or tuple(rows.shape[1:]) != row_shape:
            raise DatasetError(f"{self.tmp_dir}: array {name!r} expects {dtype} rows of "
                               f"{row_shape}, got {rows.dtype} {rows.shape}")
        handle.write(np.ascontiguousarray(rows).tobytes())
        self._appended[name] = (handle, dtype, row_shape, count + len(rows))

    def commit(self, metadata: dict[str, Any], *fixed: np.memmap) -> Path:
        """Flush and fsync everything, write the manifest last, rename into place."""
        for array in fixed:
            array.flush()
        for name, (handle, dtype, row_shape, count) in self._appended.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            self.arrays[name] = ArraySpec(dtype, (count, *row_shape))
        for name in self.arrays:
            fsync_path(self.tmp_dir / f"{name}.bin")
        manifest = {"format_version": FORMAT_VERSION, "key": self.key, "metadata": metadata,
                    "arrays": {n: {"dtype": s.dtype, "shape": list(s.shape), "bytes": s.nbytes}
                               for n, s in self.arrays.items()}}
        path = self.tmp_dir / MANIFEST
        path.write_text(json.dumps(manifest, indent=1))
        fsync_path(path)
        fsync_path(self.tmp_dir)
        old = self.final_dir.with_name(f"{self.final_dir.name}.old-{os.getpid()}")
        if self.final_dir.exists():
            self.final_dir.rename(old)
        self.tmp_dir.rename(self.final_dir)
        fsync_path(self.final_dir.parent)
        if old.exists():
            shutil.rmtree(old)
        return self.final_dir

    def abort(self) -> None:
        """Remove the temporary folder (after an error)."""
        for handle, *_ in self._appended.values():
            handle.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def write_error(err: OSError, where: Path, needed_bytes: int, what: str) -> DatasetError:
    """A DatasetError for a failed write, naming the size needed when the disk is full."""
    if err.errno == errno.ENOSPC:
        return DatasetError(f"{where}: disk full while writing {what}; it needs about "
                            f"{format_bytes(needed_bytes)}")
    return DatasetError(f"{where}: could not write {what}: {err}")


@dataclass
class OpenedStore:
    """Read-only memory maps of a complete store, plus its manifest metadata."""

    folder: Path
    key: str
    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays."""
        return sum(int(a.nbytes) for a in self.arrays.values())


def open_store(folder: Path, key: str) -> tuple[OpenedStore | None, str]:
    """The store in ``folder`` if complete and built for ``key``; else None and the reason."""
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        return None, "no cache yet"
    if not manifest_path.is_file():
        return None, f"{folder}: no {MANIFEST} (an interrupted build)"
    try:
        manifest = json.loads(manifest_path.read_text())
        stored_key, arrays = manifest["key"], manifest["arrays"]
        version = manifest["format_version"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"{manifest_path}: unreadable manifest ({err})"
    if version != FORMAT_VERSION:
        return None, f"{manifest_path}: format version {version!r}, expected {FORMAT_VERSION}"
    if stored_key != key:
        return None, (f"{manifest_path}: built from other data or another config (key "
                      f"{str(stored_key)[:12]}…, expected {key[:12]}…)")
    opened: dict[str, np.ndarray] = {}
    for name, entry in arrays.items():
        path = folder / f"{name}.bin"
        try:
            spec = ArraySpec(_checked_dtype(entry["dtype"], name),
                             tuple(int(s) for s in entry["shape"]))
        except (KeyError, TypeError, ValueError, DatasetError) as err:
            return None, f"{manifest_path}: bad entry for array {name!r} ({err})"
        size = path.stat().st_size if path.is_file() else -1
        if size != spec.nbytes:
            return None, (f"{path}: {size} bytes, manifest says {spec.nbytes} (truncated or "
                          "replaced)")
        opened[name] = (np.memmap(path, dtype=spec.dtype, mode="r", shape=spec.shape)
                        if spec.nbytes else np.zeros(spec.shape, dtype=spec.dtype))
    return OpenedStore(folder, key, dict(manifest.get("metadata", {})), opened), ""


def remove_stale_temporaries(folder: Path) -> None:
    """Delete ``<folder>.tmp-*`` / ``.old-*`` siblings left by crashed builds."""
    if not folder.parent.is_dir():
        return
    for sibling in folder.parent.glob(f"{folder.name}.*-*"):
        if sibling.name.split(".")[-1].split("-")[0] in ("tmp", "old"):
            LOG.info("removing %s (left by an interrupted build)", sibling)
            shutil.rmtree(sibling, ignore_errors=True)


def _checked_dtype(dtype: str, name: str) -> str:
    if dtype not in _DTYPES:
        raise DatasetError(f"array {name!r}: dtype {dtype!r} not in {list(_DTYPES)}")
    return dtype



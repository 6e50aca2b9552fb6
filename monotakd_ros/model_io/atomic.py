"""Writes that survive a kill at any instant: one rename switches from the old to the new.

A directory checkpoint ``NAME`` is a symbolic link to an immutable, hidden version folder::

    NAME -> .NAME.v-<token>/          the current version (written and fsynced in full first)

A save writes a new version folder, fsyncs its files and the folder, creates a link to it
under a temporary name and renames that link over ``NAME`` (the single atomic switch), then
fsyncs the parent and removes older versions and any temporaries of ``NAME``. Killed before the
rename, ``NAME`` still points at the previous complete version; killed after, at the new one.

A single file is written to a temporary sibling, fsynced and renamed over the target.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import safetensors

from monotakd_ros.errors import CheckpointError

LOG = logging.getLogger(__name__)

VERSION_MARK = ".v-"  # .NAME.v-<token>: a version folder
# Leftovers of interrupted writes, this scheme's and the earlier two-rename scheme's.
TEMPORARY_MARKS = (".link-", ".tmp-", ".old-")
_MIB = 1024 * 1024


def write_directory(path: Path, write: Callable[[Path], None], size_bytes: int = 0) -> None:
    """Create a new version of the directory ``path`` with ``write(folder)``, then switch."""
    parent = path.parent
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    version = parent / f".{path.name}{VERSION_MARK}{token}"
    link = parent / f".{path.name}.link-{token}"
    switched = False
    try:
        parent.mkdir(parents=True, exist_ok=True)
        write(version)
        fsync_tree(version)
        if path.is_dir() and not path.is_symlink():
            _adopt_plain_directory(path, token)
        os.symlink(version.name, link)  # relative: the run folder may be moved or copied
        os.replace(link, path)  # the one atomic switch
        switched = True
        fsync_path(parent)
    except (OSError, safetensors.SafetensorError) as err:
        raise CheckpointError(write_failure(path, err, size_bytes)) from err
    finally:
        if not switched:
            _remove(version)
            _remove(link)
    remove_stale_versions(path)


def write_file(path: Path, write: Callable[[Path], None], size_bytes: int = 0) -> None:
    """Write one file through a temporary sibling, fsync it and rename it over ``path``."""
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fsync_tree(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except (OSError, safetensors.SafetensorError) as err:
        raise CheckpointError(write_failure(path, err, size_bytes)) from err
    finally:
        _remove(tmp)


def write_failure(path: Path, err: BaseException, size_bytes: int) -> str:
    """Message for a failed write: the path, the size it needed and the free space there."""
    where = _existing_ancestor(path.parent)
    try:
        free = f"{shutil.disk_usage(where).free / _MIB:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    size = (f"{size_bytes / _MIB:.1f} MiB" if size_bytes >= _MIB
            else f"{size_bytes / 1024:.1f} KiB")
    return f"{path}: cannot write checkpoint of {size} ({free} on {where}): {err}"


def leftovers_of(path: Path) -> list[Path]:
    """Hidden siblings left by saves of ``path``: versions and temporaries, oldest first."""
    marks = (VERSION_MARK, *TEMPORARY_MARKS)
    if not path.parent.is_dir():
        return []
    found = [p for p in path.parent.iterdir()
             if any(p.name.startswith(f".{path.name}{mark}") for mark in marks)]
    return sorted(found, key=_mtime)


def remove_stale_versions(path: Path) -> None:
    """Delete every leftover of ``path`` except the version it points at."""
    current = path.resolve() if path.is_symlink() else None
    for leftover in leftovers_of(path):
        if current is None or leftover.resolve() != current:
            _remove(leftover)


def remove_orphans(folder: Path, keep: Path) -> list[Path]:
    """Delete hidden versions and temporaries in ``folder`` that no visible link points at.

    ``keep`` (the checkpoint a run resumed from, perhaps itself a leftover) always stays: it is
    the only copy until the next save.
    """
    if not folder.is_dir():
        return []
    marks = (VERSION_MARK, *TEMPORARY_MARKS)
    entries = list(folder.iterdir())
    in_use = {p.resolve() for p in entries if p.is_symlink() and not p.name.startswith(".")}
    in_use.add(keep.resolve())
    # A hidden link is only ever a temporary (removing it leaves its target alone).
    orphans = [p for p in entries if p.name.startswith(".") and any(m in p.name for m in marks)
               and p != keep and (p.is_symlink() or p.resolve() not in in_use)]
    for orphan in orphans:
        _remove(orphan)
    return orphans


def fsync_tree(path: Path) -> None:
    """Flush a file, or a folder's files and the folder itself, to the disk."""
    if path.is_dir():
        for child in sorted(path.iterdir()):
            fsync_tree(child)
        fsync_path(path)
        return
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_path(path: Path) -> None:
    """Flush ``path`` to the disk: a file's data, or a folder's renames and new entries."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def newest(paths: Iterable[Path]) -> Path | None:
    """The most recently modified of ``paths`` (None if there are none)."""
    ordered = sorted(paths, key=_mtime)
    return ordered[-1] if ordered else None


def _adopt_plain_directory(path: Path, token: str) -> None:
    """A real folder at ``path`` (older checkpoints) becomes a version, so a link can replace it.

    A kill right after this rename leaves ``path`` missing and the folder as a complete
    version; ``model_io.checkpoint.recover_directory`` finds it.
    """
    adopted = path.parent / f".{path.name}{VERSION_MARK}adopted-{token}"
    os.replace(path, adopted)
    fsync_path(path.parent)


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    except OSError as err:
        LOG.warning("%s: could not remove a leftover of an earlier save (%s)", path, err)

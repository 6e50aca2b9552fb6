"""Writing synthetic data in the real KITTI layouts: the object set and raw drives."""

from __future__ import annotations

import multiprocessing
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from monotakd_ros.data.kitti.calib import (
    object_calib_from_camera_calib,
    raw_calib_from_camera_calib,
)
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter, drive_dir_name
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.drive import generate_drive
from monotakd_ros.data.synth.generator import MAX_OBJECT_FRAMES, generate_object_frame
from monotakd_ros.errors import DatasetError

OBJECT_FOLDERS = ("training", "testing", "ImageSets")
RAW_DATE = "2011_09_26"  # synthetic drives borrow the date of KITTI's first raw recordings
FrameCallback = Callable[[], None]


def prepare_output_dir(out: Path, owned: list[Path], overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one unless ``overwrite``, then clear ``owned`` in it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: output path exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out}: output directory is not empty (use --overwrite to "
                               "replace the synthetic data in it)")
        for path in owned:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def split_counts(frames: int, test_fraction: float) -> tuple[int, int]:
    """(training, testing) frame counts; at least one training frame."""
    if frames < 1:
        raise DatasetError(f"frames must be at least 1, got {frames}")
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    testing = min(int(round(frames * test_fraction)), frames - 1)
    return frames - testing, testing


def _write_object_frame(job: tuple[Path, int, int, int, bool, SynthConfig | None]) -> int:
    """Generate frame ``index`` and write it into training/ or testing/ (one worker's task)."""
    out, seed, index, num_train, labelled_test, config = job
    frame = generate_object_frame(seed, index, config)
    calib = object_calib_from_camera_calib(frame.calib)
    if index < num_train or labelled_test:
        KittiObjectWriter(out, "training").write_frame(
            f"{index:06d}", frame.image_bgr, calib, frame.points, frame.labels, frame.plane)
    else:
        KittiObjectWriter(out, "testing").write_frame(
            f"{index - num_train:06d}", frame.image_bgr, calib, frame.points, None, frame.plane)
    return index


def _single_threaded_worker() -> None:
    """Workers share the CPU with each other: no nested OpenCV threads."""
    cv2.setNumThreads(1)


def _run(task: Callable, jobs: Iterable, workers: int) -> Iterator:
    """``map(task, jobs)`` in this process, or over ``workers`` fresh processes.

    Workers are spawned, not forked: a fork of a process whose OpenCV or BLAS thread pools are
    running can deadlock in the child.
    """
    if workers <= 1:
        yield from map(task, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context,
                             initializer=_single_threaded_worker) as pool:
        yield from pool.map(task, jobs)


def write_object_dataset(out: Path, frames: int, seed: int, val_fraction: float = 0.5,
                         test_fraction: float = 0.2, config: SynthConfig | None = None,
                         overwrite: bool = False, on_frame: FrameCallback | None = None,
                         workers: int = 1, labelled_test: bool = False) -> dict[str, list[str]]:
    """Write ``frames`` frames as a KITTI object set; returns the image sets written.

    Training frames carry labels and planes; testing frames have none, as in KITTI. The
    training frames are split at random into train and val (``val_fraction`` of them).
    ``labelled_test`` writes the test share into training/ with labels instead, as a held-out
    split listed in test.txt only (not in trainval.txt): where an experiment reports numbers.
    ``workers > 1`` generates frames in that many processes; the files are the same.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise DatasetError(f"val_fraction must lie in [0, 1], got {val_fraction}")
    if frames > MAX_OBJECT_FRAMES:
        raise DatasetError(f"frames: at most {MAX_OBJECT_FRAMES} object frames (beyond, their "
                           f"random streams would be raw drives'), got {frames}")
    out = Path(out)
    num_train, num_test = split_counts(frames, test_fraction)
    prepare_output_dir(out, [out / name for name in OBJECT_FOLDERS], overwrite)
    jobs = [(out, seed, index, num_train, labelled_test, config) for index in range(frames)]
    for _ in _run(_write_object_frame, jobs, workers):
        if on_frame is not None:
            on_frame()
    train_ids = [f"{i:06d}" for i in range(num_train)]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    is_val = np.zeros(num_train, dtype=bool)
    is_val[rng.permutation(num_train)[:int(round(num_train * val_fraction))]] = True
    image_sets = {
        "train": [i for i, v in zip(train_ids, is_val, strict=True) if not v],
        "val": [i for i, v in zip(train_ids, is_val, strict=True) if v],
        "trainval": train_ids,
        "test": [f"{i + (num_train if labelled_test else 0):06d}" for i in range(num_test)],
    }
    KittiObjectWriter(out, "training").write_image_sets(image_sets)
    return image_sets


def _write_drive(job: tuple[Path, int, int, int, SynthConfig]) -> Path:
    """Generate drive ``drive_index`` and write it (one worker's task); returns its folder."""
    out, seed, drive_index, frames_per_drive, config = job
    drive = generate_drive(seed, frames_per_drive, config, drive=drive_index)
    with RawDriveWriter(out, RAW_DATE, drive_index + 1) as writer:
        for number, frame in enumerate(drive):
            if number == 0:
                writer.write_calib(raw_calib_from_camera_calib(frame.calib, config.image_hw))
            writer.add_frame(frame.image_bgr, frame.points, frame.oxts, frame.image_stamp_ns,
                             frame.velodyne_stamp_ns)
        writer.write_tracklets(drive.tracklets())
    return out / RAW_DATE / drive_dir_name(RAW_DATE, drive_index + 1)


def write_raw_drives(out: Path, num_drives: int, frames_per_drive: int, seed: int,
                     config: SynthConfig | None = None, overwrite: bool = False,
                     on_frame: FrameCallback | None = None, workers: int = 1) -> list[Path]:
    """Write ``num_drives`` raw drives of ``frames_per_drive`` frames; returns their folders.

    A drive is written by one process; ``workers > 1`` writes that many drives at once, and
    ``on_frame`` is then called for all of a drive's frames when the drive is done.
    """
    if num_drives < 1 or frames_per_drive < 1:
        raise DatasetError(f"need at least one drive and one frame, got {num_drives} drives "
                           f"of {frames_per_drive} frames")
    out = Path(out)
    prepare_output_dir(out, [out / RAW_DATE], overwrite)
    config = SynthConfig() if config is None else config
    jobs = [(out, seed, index, frames_per_drive, config) for index in range(num_drives)]
    folders = []
    for folder in _run(_write_drive, jobs, workers):
        folders.append(folder)
        for _ in range(frames_per_drive if on_frame is not None else 0):
            on_frame()
    return folders

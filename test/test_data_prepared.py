"""The dataset cache: same frames as the live pipeline, keyed by content, crash-safe."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import write_tiny_kitti

from monotakd_ros.data.augment import (
    AugmentConfig,
    SensorFrame,
    flip_frame_horizontally,
    jitter_brightness_contrast,
)
from monotakd_ros.data.batch import InputSpec, collate_frames
from monotakd_ros.data.datasets import KittiFrameDataset, build_frame_sample
from monotakd_ros.data.predictions import kitti_labels_to_lidar_targets
from monotakd_ros.data.prepared import store as store_module
from monotakd_ros.data.prepared.batches import (
    FrameAugmentation,
    PreparedFrames,
    draw_augmentation,
)
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split, store_folder
from monotakd_ros.errors import DatasetError

SPEC = InputSpec(input_hw=(96, 320))


@pytest.fixture(scope="module")
def kitti(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_kitti(tmp_path_factory.mktemp("kitti"), num_train=4, num_val=1)


def _frames(kitti: Path, cache: Path, resident: bool = False) -> PreparedFrames:
    store = prepared_split(SplitSource(kitti, "train", SPEC), cache)
    return PreparedFrames(store, SPEC, torch.device("cpu"), resident)


def _live(kitti: Path, index: int, flip: bool):
    """The live pipeline's sample of frame ``index``, optionally mirrored."""
    dataset = KittiFrameDataset(kitti, "train", SPEC)
    frame_id = dataset.frame_ids[index]
    calib = dataset.kitti.calib(frame_id).camera_calib()
    boxes, classes = kitti_labels_to_lidar_targets(dataset.kitti.labels(frame_id), calib,
                                                   SPEC.class_names, None)
    frame = SensorFrame(dataset.kitti.image(frame_id), calib, dataset.kitti.points(frame_id),
                        boxes, classes)
    if flip:
        frame = flip_frame_horizontally(frame)
    return collate_frames([build_frame_sample(frame_id, frame, SPEC, True, True)])


def _sorted_rows(points: torch.Tensor) -> np.ndarray:
    array = points.numpy()
    return array[np.lexsort(array.T[::-1])]


@pytest.mark.parametrize("flip", [False, True])
def test_prepared_batch_equals_the_live_pipeline(kitti: Path, tmp_path: Path,
                                                 flip: bool) -> None:
    frames = _frames(kitti, tmp_path)
    for index in range(len(frames)):
        live = _live(kitti, index, flip)
        cached = frames.batch([index], FrameAugmentation.fixed_flip(1, flip))
        assert cached.frame_ids == live.frame_ids
        # Mirroring before or after INTER_AREA differs by at most one grey level.
        tolerance = 1.01 / (255 * min(SPEC.std)) if flip else 1e-5
        assert torch.allclose(cached.images, live.images, atol=tolerance)
        assert torch.allclose(cached.P2, live.P2, atol=1e-3)
        assert torch.allclose(cached.T_rect_from_lidar, live.T_rect_from_lidar, atol=1e-6)
        same_depth = (cached.depth_maps == live.depth_maps).float().mean()
        assert same_depth > 0.999 and int((live.depth_maps > 0).sum()) > 100
        np.testing.assert_allclose(_sorted_rows(cached.points[0]), _sorted_rows(live.points[0]))
        assert torch.allclose(cached.gt_boxes_lidar[0], live.gt_boxes_lidar[0], atol=1e-6)
        assert torch.equal(cached.gt_classes[0], live.gt_classes[0])
        assert torch.equal(cached.original_hw, live.original_hw)


def test_colour_jitter_acts_like_the_live_jitter_on_the_cached_image(kitti: Path,
                                                                    tmp_path: Path) -> None:
    frames = _frames(kitti, tmp_path)
    brightness, contrast = 1.15, 0.85
    jitter = FrameAugmentation(np.zeros(1, bool), np.array([brightness]), np.array([contrast]))
    jittered = frames.batch([0], jitter).images[0]
    rows = int(frames.store.arrays["valid_rows"][0])
    rgb = np.asarray(frames.store.arrays["images"][0])[:, :rows]  # (3, rows, W) uint8
    expected_bgr = jitter_brightness_contrast(np.ascontiguousarray(rgb[::-1].transpose(1, 2, 0)),
                                              brightness, contrast)
    expected = torch.from_numpy(expected_bgr[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
    mean = torch.tensor(SPEC.mean).view(3, 1, 1)
    std = torch.tensor(SPEC.std).view(3, 1, 1)
    as_pixels = ((jittered[:, :rows] * std + mean) * 255).round()
    assert (as_pixels - expected).abs().max() <= 1.0  # cv2's integer grey vs float grey
    plain = frames.batch([0], FrameAugmentation.none(1)).images[0]
    assert (jittered[:, :rows] - plain[:, :rows]).abs().mean() > 0.05
    assert torch.all(jittered[:, rows:] == 0)  # the pad stays the mean colour


def test_resident_and_memory_mapped_batches_are_identical(kitti: Path, tmp_path: Path) -> None:
    mapped, resident = _frames(kitti, tmp_path), _frames(kitti, tmp_path, resident=True)
    draws = draw_augmentation(AugmentConfig(0.5, 0.2, 0.2), [11, 12, 13])
    a, b = mapped.batch([2, 0, 3], draws), resident.batch([2, 0, 3], draws)
    assert torch.equal(a.images, b.images) and torch.equal(a.depth_maps, b.depth_maps)
    assert all(torch.equal(p, q) for p, q in zip(a.points, b.points, strict=True))
    assert a.flipped.tolist() == list(draws.flipped)


def test_augmentation_draws_are_a_function_of_the_seed() -> None:
    config = AugmentConfig(0.5, 0.2, 0.2)
    first, again = draw_augmentation(config, range(40)), draw_augmentation(config, range(40))
    assert np.array_equal(first.brightness, again.brightness)
    assert 8 < first.flipped.sum() < 32
    assert np.all(np.abs(first.contrast - 1) <= 0.2) and np.ptp(first.contrast) > 0.2


def _build_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from monotakd_ros.data.prepared import split_store
    calls: list[int] = []
    original = split_store._build

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(split_store, "_build", counting)
    return calls


def test_a_cache_is_reused_and_rebuilt_when_the_data_or_config_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tiny_kitti(tmp_path / "kitti", num_train=2, num_val=1)
    cache = tmp_path / "cache"
    builds = _build_count(monkeypatch)
    source = SplitSource(root, "train", SPEC)
    first = prepared_split(source, cache)
    prepared_split(source, cache)
    assert len(builds) == 1
    label = root / "training" / "label_2" / f"{first.metadata['frame_ids'][0]}.txt"
    label.write_text(label.read_text().replace("Car", "Van", 1))  # other data, same files
    rebuilt = prepared_split(source, cache)
    assert len(builds) == 2 and rebuilt.key != first.key
    assert int(first.arrays["classes"][0]) == 0 and int(rebuilt.arrays["classes"][0]) == -1
    os.utime(label, ns=(1, 1))  # touched, same content: re-hashed, not rebuilt
    assert prepared_split(source, cache).key == rebuilt.key and len(builds) == 2
    other_config = SplitSource(root, "train", InputSpec(input_hw=(96, 320),
                                                        class_names=("Car", "Van")))
    assert store_folder(cache, other_config) == store_folder(cache, source)
    prepared_split(other_config, cache)
    assert len(builds) == 3


def test_a_truncated_or_unfinished_cache_is_detected_and_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tiny_kitti(tmp_path / "kitti", num_train=2, num_val=1)
    cache = tmp_path / "cache"
    builds = _build_count(monkeypatch)
    source = SplitSource(root, "train", SPEC)
    folder = prepared_split(source, cache).folder
    images = folder / "images.bin"
    with images.open("r+b") as handle:
        handle.truncate(images.stat().st_size // 2)  # a crash mid-write
    prepared_split(source, cache)
    assert len(builds) == 2 and images.stat().st_size == 2 * 3 * 96 * 320
    (folder / "manifest.json").unlink()  # the manifest is written last: no manifest = unfinished
    assert "interrupted" in store_module.open_store(folder, "k")[1]
    prepared_split(source, cache)
    assert len(builds) == 3


def test_truncated_array_is_reported_with_its_sizes(tmp_path: Path) -> None:
    root = write_tiny_kitti(tmp_path / "kitti", num_train=2, num_val=1)
    store = prepared_split(SplitSource(root, "train", SPEC), tmp_path / "cache")
    points = store.folder / "points.bin"
    with points.open("r+b") as handle:
        handle.truncate(16)
    opened, reason = store_module.open_store(store.folder, store.key)
    assert opened is None and "points.bin: 16 bytes" in reason and "truncated" in reason


def test_a_full_disk_names_the_size_needed(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tiny_kitti(tmp_path / "kitti", num_train=2, num_val=1)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DatasetError, match=r"needs \d+\.\d MiB of disk, only 1000 B free"):
        prepared_split(SplitSource(root, "train", SPEC), tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("split_*tmp*"))

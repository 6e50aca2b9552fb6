"""KITTI-format directories -> FrameSample: labels, LiDAR depth, ranges, flips and raw drives."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.data.batch import (
    FrameSample,
    InputSpec,
    collate_frames,
    prepare_image,
    resized_hw,
)
from monotakd_ros.data.datasets import KittiFrameDataset, RawDriveFrameDataset
from monotakd_ros.data.kitti.calib import object_calib_from_camera_calib
from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.kitti.object_dataset import KittiObjectWriter, write_image_set
from monotakd_ros.data.kitti.oxts import OXTS_FIELD_NAMES, OxtsPacket
from monotakd_ros.data.kitti.raw_calib import raw_calib_from_camera_calib
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW, kitti_camera_calib
from monotakd_ros.errors import DatasetError

CALIB = kitti_camera_calib()
SPEC = InputSpec(input_hw=(192, 640))
RED_BGR = (0, 0, 255)
# KITTI label rows: name, [x, y, z, l, h, w, ry] (camera frame, bottom centre).
OBJECTS = [
    ("Car", [2.0, 1.65, 15.0, 3.9, 1.56, 1.6, 0.3]),  # in range, drawn red in the image
    ("Truck", [-6.0, 1.7, 30.0, 8.0, 3.0, 2.5, 1.2]),  # background class: dropped
    ("Pedestrian", [-3.0, 1.7, 9.0, 0.8, 1.73, 0.6, -1.0]),
    ("DontCare", [-1000.0, -1000.0, -1000.0, -1.0, -1.0, -1.0, -10.0]),  # no 3D extent
    ("Van", [5.0, 1.7, 25.0, 4.5, 2.0, 1.9, -1.5]),  # neighbour of Car: ignored (-1)
    ("Car", [1.0, 1.6, 60.0, 3.9, 1.5, 1.6, 0.0]),  # beyond x_max = 46.8 m: dropped
    ("Cyclist", [33.0, 1.7, 20.0, 1.8, 1.7, 0.6, 0.5]),  # y = -33 m < y_min: dropped
]
KEPT = [0, 2, 4]  # rows of OBJECTS a Car/Pedestrian/Cyclist detector trains on
KEPT_CLASSES = [0, 1, -1]


def expected_centres_lidar(rows: list[int]) -> np.ndarray:
    """(M, 3) geometric centres of OBJECTS[rows] in the LiDAR frame, by hand."""
    boxes = np.array([OBJECTS[i][1] for i in rows])
    centre_rect = np.column_stack([boxes[:, 0], boxes[:, 1] - boxes[:, 4] / 2, boxes[:, 2],
                                   np.ones(len(boxes))])
    return (np.linalg.inv(CALIB.T_rect_from_lidar) @ centre_rect.T).T[:, :3]


def box_corners_lidar(box: np.ndarray) -> np.ndarray:
    """(8, 3) corners of one [x, y, z, l, w, h, yaw] box."""
    x, y, z, length, width, height, yaw = box
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    local = signs * np.array([length, width, height]) / 2
    c, s = math.cos(yaw), math.sin(yaw)
    rotated = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    return rotated + np.array([x, y, z])


def project(points_lidar: np.ndarray, P2: np.ndarray,
            T_rect_from_lidar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((N, 2) pixels, (N,) depth) through P2 @ T_rect_from_lidar."""
    homogeneous = np.column_stack([points_lidar[:, :3], np.ones(len(points_lidar))])
    uvw = homogeneous @ (P2 @ T_rect_from_lidar).T
    return uvw[:, :2] / uvw[:, 2:], uvw[:, 2]


def scene_points(rng: np.random.Generator) -> np.ndarray:
    """(N, 4) ground points, a wall and points inside the kept boxes, with intensity."""
    ground = rng.uniform([-5, -40, -1.78], [75, 40, -1.68], size=(6000, 3))
    wall = rng.uniform([30, -20, -1.7], [30.3, 20, 2.5], size=(1500, 3))
    objects = []
    for centre in expected_centres_lidar(KEPT):
        objects.append(centre + rng.uniform(-0.5, 0.5, size=(100, 3)))
    xyz = np.concatenate([ground, wall, *objects])
    return np.column_stack([xyz, rng.uniform(0, 1, len(xyz))]).astype(np.float32)


def scene_image(seed: int) -> np.ndarray:
    """Smooth gradient image with the Car's projected 2D box filled in pure red."""
    rows, cols = np.mgrid[0:KITTI_IMAGE_HW[0], 0:KITTI_IMAGE_HW[1]]
    image = np.stack([(cols * 0.15 + seed * 10) % 200, (rows * 0.5) % 200,
                      np.full_like(rows, 60)], axis=2).astype(np.uint8)
    car = np.array(OBJECTS[0][1])
    box_lidar = np.array([*expected_centres_lidar([0])[0], car[3], car[5], car[4],
                          -car[6] - math.pi / 2])
    uv, _ = project(box_corners_lidar(box_lidar), CALIB.P2, CALIB.T_rect_from_lidar)
    (u1, v1), (u2, v2) = np.round(uv.min(axis=0)), np.round(uv.max(axis=0))
    cv2.rectangle(image, (int(u1), int(v1)), (int(u2), int(v2)), RED_BGR, thickness=-1)
    return image


def kitti_labels() -> KittiLabels:
    n = len(OBJECTS)
    return KittiLabels(names=np.array([name for name, _ in OBJECTS]),
                       truncated=np.zeros(n), occluded=np.zeros(n, np.int64), alpha=np.zeros(n),
                       bbox=np.tile([10.0, 10.0, 50.0, 50.0], (n, 1)),
                       boxes_cam=np.array([box for _, box in OBJECTS]))


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kitti")
    rng = np.random.default_rng(0)
    writer = KittiObjectWriter(root)
    for index in range(3):
        writer.write_frame(f"{index:06d}", scene_image(index),
                           object_calib_from_camera_calib(CALIB), scene_points(rng),
                           kitti_labels())
    writer.write_image_sets({"train": ["000000", "000001"], "val": ["000002"]})
    return root


def test_labels_become_lidar_targets_with_class_mapping(kitti_root: Path) -> None:
    sample = KittiFrameDataset(kitti_root, "train", SPEC)[0]
    assert isinstance(sample, FrameSample) and sample.has_labels
    assert sample.gt_classes.tolist() == KEPT_CLASSES
    boxes = sample.gt_boxes_lidar
    assert boxes.dtype == np.float32 and boxes.shape == (3, 7)
    assert np.allclose(boxes[:, :3], expected_centres_lidar(KEPT), atol=1e-4)
    cam = np.array([OBJECTS[i][1] for i in KEPT])
    assert np.allclose(boxes[:, 3:6], cam[:, [3, 5, 4]])  # (l, h, w) -> (l, w, h)
    expected_yaw = -cam[:, 6] - math.pi / 2  # exact for an axis-aligned extrinsic
    yaw_error = np.angle(np.exp(1j * (boxes[:, 6] - expected_yaw)))
    assert np.all(np.abs(yaw_error) < 0.02)


def test_depth_map_equals_original_projection_brought_to_input(kitti_root: Path) -> None:
    dataset = KittiFrameDataset(kitti_root, "train", SPEC)
    sample = dataset[1]
    points = dataset.kitti.points("000001")
    # Independent route: project at the original resolution, then map pixels like cv2.resize.
    uv, depth = project(points, CALIB.P2, CALIB.T_rect_from_lidar)
    height0, width0 = KITTI_IMAGE_HW
    visible = ((depth >= 0.1) & (uv[:, 0] >= -0.5) & (uv[:, 0] < width0 - 0.5)
               & (uv[:, 1] >= -0.5) & (uv[:, 1] < height0 - 0.5))
    sx, sy = sample.scale_xy
    cols = np.floor(sx * (uv[visible, 0] + 0.5) - 0.5 + 0.5).astype(int)
    rows = np.floor(sy * (uv[visible, 1] + 0.5) - 0.5 + 0.5).astype(int)
    kept = rows < SPEC.input_hw[0]  # 193 resized rows, the bottom one is cropped
    expected = np.full(SPEC.input_hw, np.inf)
    np.minimum.at(expected, (rows[kept], cols[kept]), depth[visible][kept])
    expected[np.isinf(expected)] = 0.0
    got = sample.depth_map
    assert got.shape == SPEC.input_hw and got.dtype == np.float32
    same_support = (got > 0) == (expected > 0)
    assert same_support.mean() > 0.999 and (got > 0).sum() > 1000
    both = (got > 0) & (expected > 0)
    assert np.mean(np.isclose(got[both], expected[both], rtol=1e-5)) > 0.995
    assert not got[resized_hw(KITTI_IMAGE_HW, SPEC)[0]:].any()  # padded rows carry no depth


def test_points_are_in_range_and_in_view(kitti_root: Path) -> None:
    dataset = KittiFrameDataset(kitti_root, "train", SPEC)
    sample = dataset[0]
    raw = dataset.kitti.points("000000")
    low, high = np.array(SPEC.point_range[:3]), np.array(SPEC.point_range[3:])
    uv, depth = project(raw, CALIB.P2, CALIB.T_rect_from_lidar)
    in_view = ((depth > 0) & (uv[:, 0] >= -0.5) & (uv[:, 0] < KITTI_IMAGE_HW[1] - 0.5)
               & (uv[:, 1] >= -0.5) & (uv[:, 1] < KITTI_IMAGE_HW[0] - 0.5))
    in_range = np.all((raw[:, :3] >= low) & (raw[:, :3] < high), axis=1)
    assert np.array_equal(sample.points, raw[in_view & in_range])
    everything = KittiFrameDataset(kitti_root, "train", SPEC, fov_points_only=False)[0]
    assert np.array_equal(everything.points, raw[in_range])
    assert len(everything.points) > len(sample.points)


def red_box_in_input(sample: FrameSample) -> np.ndarray:
    """[u1, v1, u2, v2] of the pixels that are clearly the red rectangle in the input image."""
    std, mean = np.array(SPEC.std)[:, None, None], np.array(SPEC.mean)[:, None, None]
    rgb = np.asarray(sample.image) * std + mean  # (3, H, W) in [0, 1]
    red = (rgb[0] > 0.9) & (rgb[1] < 0.1) & (rgb[2] < 0.1)
    rows, cols = np.nonzero(red)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=float)


def projected_box(sample: FrameSample, index: int) -> np.ndarray:
    uv, _ = project(box_corners_lidar(sample.gt_boxes_lidar[index]), sample.P2,
                    sample.T_rect_from_lidar)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


@pytest.mark.parametrize("flip", [False, True])
def test_image_boxes_points_and_depth_agree_after_augmentation(kitti_root: Path,
                                                               flip: bool) -> None:
    config = AugmentConfig(hflip_probability=1.0 if flip else 0.0)
    sample = KittiFrameDataset(kitti_root, "train", SPEC, augment=config)[0]
    # The car's box, projected with the sample's own P2 and extrinsic, covers the red pixels.
    assert np.allclose(red_box_in_input(sample), projected_box(sample, 0), atol=1.5)
    # Every kept point projects onto a depth pixel holding it or a nearer return.
    uv, depth = project(sample.points, sample.P2, sample.T_rect_from_lidar)
    cols, rows = np.floor(uv + 0.5).astype(int).T
    on_map = sample.depth_map[rows, cols]
    assert np.all(on_map > 0) and np.all(on_map <= depth + 1e-4)


def test_flip_mirrors_every_part_of_the_sample(kitti_root: Path) -> None:
    plain = KittiFrameDataset(kitti_root, "train", SPEC)[0]
    flipped = KittiFrameDataset(kitti_root, "train", SPEC,
                                augment=AugmentConfig(hflip_probability=1.0))[0]
    difference = (torch.flip(plain.image, dims=[2]) - flipped.image).abs()
    assert difference.max() < 0.05 and difference.mean() < 1e-3
    nonzero = (plain.depth_map > 0) | (flipped.depth_map > 0)
    assert np.mean((np.fliplr(plain.depth_map) == flipped.depth_map)[nonzero]) > 0.99
    mirrored = plain.points.copy()
    mirrored[:, 1] *= -1
    assert np.array_equal(np.sort(mirrored, axis=0), np.sort(flipped.points, axis=0))
    expected_boxes = plain.gt_boxes_lidar.copy()
    expected_boxes[:, [1, 6]] *= -1
    assert np.allclose(flipped.gt_boxes_lidar, expected_boxes, atol=1e-6)
    assert np.array_equal(flipped.gt_classes, plain.gt_classes)
    u_plain = projected_box(plain, 0)
    u_flipped = projected_box(flipped, 0)
    width = SPEC.input_hw[1]
    assert np.allclose(u_flipped[[0, 2]], width - 1 - u_plain[[2, 0]], atol=1e-6)
    assert np.allclose(u_flipped[[1, 3]], u_plain[[1, 3]], atol=1e-6)


def test_camera_only_mode_needs_no_lidar(kitti_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    shutil.copytree(kitti_root, root)
    shutil.rmtree(root / "training" / "velodyne")
    sample = KittiFrameDataset(root, "val", SPEC, with_lidar=False)[0]
    assert sample.points.shape == (0, 4)
    assert sample.depth_map.shape == SPEC.input_hw and not sample.depth_map.any()
    assert sample.gt_classes.tolist() == KEPT_CLASSES
    with pytest.raises(DatasetError, match=r"000002\.bin: LiDAR scan of frame '000002'"):
        KittiFrameDataset(root, "val", SPEC)[0]


def test_unlabelled_split(kitti_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    shutil.copytree(kitti_root, root)
    shutil.rmtree(root / "training" / "label_2")
    with pytest.raises(DatasetError, match=r"training.*has no label_2 folder"):
        KittiFrameDataset(root, "train", SPEC)
    sample = KittiFrameDataset(root, "train", SPEC, with_labels=False)[1]
    assert not sample.has_labels and sample.gt_boxes_lidar.shape == (0, 7)
    assert sample.gt_classes.shape == (0,) and sample.frame_id == "000001"


def test_split_names_files_and_errors(kitti_root: Path, tmp_path: Path) -> None:
    assert KittiFrameDataset(kitti_root, "val", SPEC).frame_ids == ["000002"]
    assert len(KittiFrameDataset(kitti_root, None, SPEC)) == 3
    split_file = tmp_path / "mine.txt"
    write_image_set(split_file, ["000002", "000000"])
    assert KittiFrameDataset(kitti_root, split_file, SPEC).frame_ids == ["000002", "000000"]
    with pytest.raises(DatasetError, match="image set 'nope' does not exist"):
        KittiFrameDataset(kitti_root, "nope", SPEC)
    with pytest.raises(DatasetError, match=r"missing\.txt: split file does not exist"):
        KittiFrameDataset(kitti_root, tmp_path / "missing.txt", SPEC)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DatasetError, match="lists no frames"):
        KittiFrameDataset(kitti_root, tmp_path / "empty.txt", SPEC)


def test_dataloader_yields_frame_batches(kitti_root: Path) -> None:
    dataset = KittiFrameDataset(kitti_root, "train", SPEC, augment=AugmentConfig(0.5, 0.2, 0.2))
    batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate_frames)))
    assert batch.images.shape == (2, 3, *SPEC.input_hw)
    assert batch.depth_maps.shape == (2, *SPEC.input_hw)
    assert batch.frame_ids == ["000000", "000001"]
    assert batch.has_labels.tolist() == [True, True]
    assert [c.tolist() for c in batch.gt_classes] == [KEPT_CLASSES] * 2
    assert batch.original_hw.tolist() == [list(KITTI_IMAGE_HW)] * 2


def test_raw_drive_frames_are_unlabelled_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    oxts = OxtsPacket(*([0.0] * 25 + [0] * (len(OXTS_FIELD_NAMES) - 25)))
    with RawDriveWriter(tmp_path, "2011_09_26", 5) as writer:
        writer.write_calib(raw_calib_from_camera_calib(CALIB))
        for index in range(2):
            stamp_ns = 1_317_000_000_000_000_000 + index * 100_000_000
            writer.add_frame(scene_image(index), scene_points(rng), oxts, stamp_ns, stamp_ns)
    dataset = RawDriveFrameDataset([writer.drive_dir], SPEC)
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample.frame_id == "2011_09_26_drive_0005_sync/0000000001"
    assert not sample.has_labels and sample.gt_boxes_lidar.shape == (0, 7)
    assert np.allclose(sample.T_rect_from_lidar, CALIB.T_rect_from_lidar)
    assert (sample.depth_map > 0).sum() > 1000 and len(sample.points) > 1000
    image, P2_input, _ = prepare_image(scene_image(1), CALIB.P2, SPEC)
    assert torch.equal(torch.as_tensor(sample.image), image)
    assert np.allclose(sample.P2, P2_input)
    with pytest.raises(DatasetError, match="no drive directories"):
        RawDriveFrameDataset([], SPEC)

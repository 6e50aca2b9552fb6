"""KITTI raw ``tracklet_labels.xml`` (boost::serialization XML) and per-frame labels from it.

A tracklet is one object over consecutive frames: its class, its size h, w, l (metres) and, from
``first_frame`` on, one pose per frame: the bottom centre (tx, ty, tz) of the box in the Velodyne
frame and its rotation (rx, ry, rz), of which only the yaw ``rz`` is labelled. Each pose carries
the annotation states of the devkit: ``state`` (0 unset, 1 interpolated, 2 labelled),
``occlusion`` (-1 unset, 0 visible, 1 partly, 2 fully occluded) and ``truncation`` (-1 unset,
0 in image, 1 truncated, 2 out of image, 99 behind the image plane).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import KittiFormatError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import boxes_lidar_to_cam
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d
from monotakd_ros.geometry.rotations import wrap_angle

POSE_KEYS = ("tx", "ty", "tz", "rx", "ry", "rz")
TRUNCATION_OUT_OF_IMAGE = 2
TRUNCATION_BEHIND_IMAGE = 99
STATE_LABELED = 2
OCCLUSION_UNKNOWN = 3  # label_2's code for "unknown"
_UNSET = -1
# Tracklet object types whose label_2 name differs.
_LABEL_NAMES = {"Person (sitting)": "Person_sitting"}

# Per-pose annotation arrays after the pose itself: (XML tag, dtype, default), in file order.
_POSE_STATES: tuple[tuple[str, type, float], ...] = (
    ("state", np.int64, STATE_LABELED),
    ("occlusion", np.int64, _UNSET),
    ("occlusion_kf", np.int64, _UNSET),
    ("truncation", np.int64, _UNSET),
    ("amt_occlusion", np.float64, _UNSET),
    ("amt_occlusion_kf", np.int64, _UNSET),
    ("amt_border_l", np.float64, _UNSET),
    ("amt_border_r", np.float64, _UNSET),
    ("amt_border_kf", np.int64, _UNSET),
)


@dataclass(eq=False)
class Tracklet:
    """One annotated object of a raw drive (F poses, from ``first_frame`` on)."""

    object_type: str  # Car, Van, Truck, Pedestrian, Person (sitting), Cyclist, Tram, Misc
    h: float  # metres
    w: float
    l: float  # noqa: E741  # the devkit's name for the length
    first_frame: int
    poses: np.ndarray  # (F, 6) tx, ty, tz, rx, ry, rz: bottom centre (m) and rotation (rad)
    truncation: np.ndarray | None = None  # (F,) int truncation state, default unset
    occlusion: np.ndarray | None = None  # (F,) int occlusion state, default unset
    state: np.ndarray | None = None  # (F,) int, default labelled
    occlusion_kf: np.ndarray | None = None  # (F,) int
    amt_occlusion: np.ndarray | None = None  # (F,) float
    amt_occlusion_kf: np.ndarray | None = None  # (F,) int
    amt_border_l: np.ndarray | None = None  # (F,) float
    amt_border_r: np.ndarray | None = None  # (F,) float
    amt_border_kf: np.ndarray | None = None  # (F,) int
    finished: int = 1

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float64).reshape(-1, 6)
        if not np.all(np.isfinite(poses)):
            raise KittiFormatError(f"tracklet {self.object_type!r}: poses hold non-finite values")
        self.poses = poses
        for name, dtype, default in _POSE_STATES:
            value = getattr(self, name)
            if value is None:
                value = np.full(len(poses), default, dtype=dtype)
            value = np.asarray(value).astype(dtype, copy=True).reshape(-1)
            if value.shape != (len(poses),):
                raise KittiFormatError(
                    f"tracklet {self.object_type!r}: {name} has {value.shape[0]} entries "
                    f"for {len(poses)} poses"
                )
            setattr(self, name, value)
        if self.first_frame < 0:
            raise KittiFormatError(
                f"tracklet {self.object_type!r}: first_frame must be >= 0, got {self.first_frame}"
            )

    @property
    def num_poses(self) -> int:
        """Number of frames the tracklet spans."""
        return int(len(self.poses))

    def __eq__(self, other: object) -> bool:
        """Exact equality of every field and array."""
        if not isinstance(other, Tracklet):
            return NotImplemented
        scalars = ("object_type", "h", "w", "l", "first_frame", "finished")
        arrays = ("poses", *(name for name, _, _ in _POSE_STATES))
        return all(getattr(self, n) == getattr(other, n) for n in scalars) and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in arrays
        )

    __hash__ = None  # type: ignore[assignment]


def _child_text(element: ET.Element, tag: str, where: str) -> str:
    child = element.find(tag)
    if child is None or child.text is None:
        raise KittiFormatError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _child_number(element: ET.Element, tag: str, where: str, kind: type) -> float | int:
    text = _child_text(element, tag, where)
    try:
        return kind(text)
    except ValueError as err:
        raise KittiFormatError(f"{where}: <{tag}> is not a number: {text!r}") from err


def _items(parent: ET.Element, where: str) -> list[ET.Element]:
    """The ``<item>`` children of a boost list, checked against its ``<count>``."""
    count = int(_child_number(parent, "count", where, int))
    items = parent.findall("item")
    if len(items) != count:
        raise KittiFormatError(f"{where}: <count> says {count} items, found {len(items)}")
    return items


def _parse_tracklet(item: ET.Element, where: str) -> Tracklet:
    poses_element = item.find("poses")
    if poses_element is None:
        raise KittiFormatError(f"{where}: missing <poses>")
    pose_items = _items(poses_element, f"{where}/poses")
    poses = np.zeros((len(pose_items), 6))
    states = {name: [] for name, _, _ in _POSE_STATES}
    for index, pose in enumerate(pose_items):
        pose_where = f"{where}/poses/item[{index}]"
        poses[index] = [_child_number(pose, key, pose_where, float) for key in POSE_KEYS]
        for name, dtype, _ in _POSE_STATES:
            kind = int if dtype is np.int64 else float
            states[name].append(_child_number(pose, name, pose_where, kind))
    finished = item.find("finished")
    return Tracklet(
        object_type=_child_text(item, "objectType", where),
        h=float(_child_number(item, "h", where, float)),
        w=float(_child_number(item, "w", where, float)),
        l=float(_child_number(item, "l", where, float)),
        first_frame=int(_child_number(item, "first_frame", where, int)),
        poses=poses,
        finished=1 if finished is None else int(_child_number(item, "finished", where, int)),
        **{name: np.array(values) for name, values in states.items()},
    )


def read_tracklets(path: Path) -> list[Tracklet]:
    """Parse a KITTI raw ``tracklet_labels.xml``."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot read tracklets ({err.strerror})") from err
    except ET.ParseError as err:
        raise KittiFormatError(f"{path}: malformed XML ({err})") from err
    tracklets_element = root if root.tag == "tracklets" else root.find("tracklets")
    if tracklets_element is None:
        raise KittiFormatError(f"{path}: no <tracklets> element under <{root.tag}>")
    return [
        _parse_tracklet(item, f"{path}: tracklets/item[{index}]")
        for index, item in enumerate(_items(tracklets_element, f"{path}: tracklets"))
    ]


def _number_text(value: float | int, dtype: type) -> str:
    # repr keeps every bit of a float64, so reading back is exact.
    return str(int(value)) if dtype is np.int64 else repr(float(value))


def _tracklet_lines(tracklet: Tracklet, first_item: bool, first_pose: bool) -> list[str]:
    """XML lines of one tracklet; boost writes class ids only on an element's first use."""
    item_open = '<item class_id="1" tracking_level="0" version="1">' if first_item else "<item>"
    lines = [
        f"\t{item_open}",
        f"\t\t<objectType>{tracklet.object_type}</objectType>",
        f"\t\t<h>{tracklet.h!r}</h>",
        f"\t\t<w>{tracklet.w!r}</w>",
        f"\t\t<l>{tracklet.l!r}</l>",
        f"\t\t<first_frame>{int(tracklet.first_frame)}</first_frame>",
        '\t\t<poses class_id="2" tracking_level="0" version="0">' if first_item else "\t\t<poses>",
        f"\t\t\t<count>{tracklet.num_poses}</count>",
        "\t\t\t<item_version>2</item_version>",
    ]
    for index in range(tracklet.num_poses):
        opening = '<item class_id="3" tracking_level="0" version="2">'
        lines.append(f"\t\t\t{opening if first_pose and index == 0 else '<item>'}")
        for key, value in zip(POSE_KEYS, tracklet.poses[index], strict=True):
            lines.append(f"\t\t\t\t<{key}>{float(value)!r}</{key}>")
        for name, dtype, _ in _POSE_STATES:
            text = _number_text(getattr(tracklet, name)[index], dtype)
            lines.append(f"\t\t\t\t<{name}>{text}</{name}>")
        lines.append("\t\t\t</item>")
    lines += ["\t\t</poses>", f"\t\t<finished>{int(tracklet.finished)}</finished>", "\t</item>"]
    return lines


def write_tracklets(path: Path, tracklets: list[Tracklet]) -> None:
    """Write ``tracklet_labels.xml`` in the devkit's boost layout; reading it back is exact."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>',
        "<!DOCTYPE boost_serialization>",
        '<boost_serialization signature="serialization::archive" version="9">',
        '<tracklets class_id="0" tracking_level="0" version="0">',
        f"\t<count>{len(tracklets)}</count>",
        "\t<item_version>1</item_version>",
    ]
    pose_written = False
    for index, tracklet in enumerate(tracklets):
        if any(ch in tracklet.object_type for ch in "<>&"):
            raise KittiFormatError(f"tracklet {index}: objectType {tracklet.object_type!r}")
        lines += _tracklet_lines(tracklet, first_item=index == 0, first_pose=not pose_written)
        pose_written = pose_written or tracklet.num_poses > 0
    lines += ["</tracklets>", "</boost_serialization>"]
    Path(path).write_text("\n".join(lines) + "\n")


def label_name_of(object_type: str) -> str:
    """Tracklet objectType -> label_2 class name (``Person (sitting)`` -> ``Person_sitting``)."""
    return _LABEL_NAMES.get(object_type, object_type.replace(" ", "_"))


def _box_area(boxes2d: np.ndarray) -> np.ndarray:
    return np.clip(boxes2d[:, 2] - boxes2d[:, 0], 0.0, None) * np.clip(
        boxes2d[:, 3] - boxes2d[:, 1], 0.0, None)


def _frame_objects(tracklets: list[Tracklet], frame: int) -> tuple[list[str], np.ndarray,
                                                                   np.ndarray]:
    """(names, (N, 7) LiDAR boxes, (N,) occlusion states) of the tracklets seen in ``frame``."""
    names, boxes, occlusion = [], [], []
    for tracklet in tracklets:
        k = frame - tracklet.first_frame
        if not 0 <= k < tracklet.num_poses:
            continue
        if tracklet.truncation[k] in (TRUNCATION_OUT_OF_IMAGE, TRUNCATION_BEHIND_IMAGE):
            continue
        tx, ty, tz, _, _, rz = tracklet.poses[k]
        # Tracklet poses are bottom centres; LiDAR boxes are geometric centres.
        boxes.append([tx, ty, tz + tracklet.h / 2.0, tracklet.l, tracklet.w, tracklet.h, rz])
        names.append(label_name_of(tracklet.object_type))
        occlusion.append(tracklet.occlusion[k])
    return names, np.array(boxes).reshape(-1, 7), np.array(occlusion, dtype=np.int64)


def tracklets_to_frame_labels(
    tracklets: list[Tracklet], num_frames: int, calib: CameraCalib, image_hw: tuple[int, int]
) -> list[KittiLabels]:
    """Camera-frame label_2-style labels of every frame of a drive.

    Boxes go through ``boxes_lidar_to_cam`` (heading carried through the extrinsic). The 2D box
    is the clipped projection; truncation is the share of the unclipped projection outside the
    image; an unset occlusion becomes 3 (unknown). Objects marked out of image or behind the
    camera, or whose projection misses the image, are left out.
    """
    frames = []
    for frame in range(num_frames):
        names, boxes_lidar, occlusion = _frame_objects(tracklets, frame)
        if not names:
            frames.append(KittiLabels())
            continue
        boxes_cam = boxes_lidar_to_cam(boxes_lidar, calib)
        bbox = boxes3d_to_boxes2d(boxes_cam, calib.P2, image_hw, clip=True)
        full_area = _box_area(boxes3d_to_boxes2d(boxes_cam, calib.P2, image_hw, clip=False))
        visible_area = _box_area(bbox)
        keep = visible_area > 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            truncated = np.clip(1.0 - visible_area / full_area, 0.0, 1.0)
        x, z, ry = boxes_cam[:, 0], boxes_cam[:, 2], boxes_cam[:, 6]
        frames.append(KittiLabels(
            names=np.array(names, dtype=np.str_)[keep],
            truncated=truncated[keep],
            occluded=np.where(occlusion == _UNSET, OCCLUSION_UNKNOWN, occlusion)[keep],
            alpha=wrap_angle(ry - np.arctan2(x, z))[keep],
            bbox=bbox[keep],
            boxes_cam=boxes_cam[keep],
        ))
    return frames

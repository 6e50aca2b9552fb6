"""A tiny synthetic KITTI raw drive shared by the raw-drive, tracklet and bag tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.calib import raw_calib_from_camera_calib
from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.data.kitti.raw_calib import RawCalib
from monotakd_ros.data.kitti.raw_drive import RawDriveWriter
from monotakd_ros.data.kitti.tracklets import Tracklet
from monotakd_ros.geometry.calib import CameraCalib

# The real 2011_09_26 calibration of design.md section 3 (object set 000000.txt).
P2_KITTI = np.array([7.215377e02, 0, 6.095593e02, 4.485728e01, 0, 7.215377e02, 1.728540e02,
                     2.163791e-01, 0, 0, 1, 2.745884e-03]).reshape(3, 4)
R0_KITTI = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01,
                     -4.278459e-03, 7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
TR_KITTI = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03, 1.480249e-02,
                     7.280733e-04, -9.998902e-01, -7.631618e-02, 9.998621e-01, 7.523790e-03,
                     1.480755e-02, -2.717806e-01]).reshape(3, 4)
SCALE = 1.0 / 6.0  # small images keep the tests fast
IMAGE_HW = (62, 207)  # 375 x 1242 / 6
DATE = "2011_09_26"
FIRST_STAMP_NS = 1317042145964389445  # 2011-09-26 13:02:25.964389445
FRAME_PERIOD_NS = 103_586_931
VELO_OFFSET_NS = -12_345_678  # the scan's stamp is a little before the image's


def kitti_camera_calib() -> CameraCalib:
    """The real KITTI calibration, scaled to the small test images."""
    return CameraCalib(P2=P2_KITTI, R0_rect=R0_KITTI, T_cam_from_lidar=TR_KITTI).scaled(
        SCALE, SCALE)


def kitti_raw_calib() -> RawCalib:
    """A full raw calibration around ``kitti_camera_calib``."""
    return raw_calib_from_camera_calib(kitti_camera_calib(), IMAGE_HW)


def oxts_packet(index: int) -> OxtsPacket:
    """A plausible OXTS reading near Karlsruhe, changing a little every frame."""
    return OxtsPacket(
        lat=49.011212804408 + 1e-5 * index, lon=8.4228850417969 + 2e-5 * index,
        alt=112.83492279053, roll=0.022447, pitch=1e-05, yaw=-1.2219096732051 + 0.01 * index,
        vn=-3.3256321640686, ve=1.1384311814592, vf=3.5147680214713, vl=0.037625160413037,
        vu=-0.03878884255623, ax=-0.29437452763793, ay=0.037166856911681, az=9.9957015129717,
        af=-0.30581030960531, al=-0.19635662515203, au=9.9942128010936, wx=-0.017332142869546,
        wy=0.024792163815438, wz=0.14511808479348, wf=-0.017498934149631,
        wl=0.021393359392165, wu=0.14563386282278, pos_accuracy=0.49229361157748,
        vel_accuracy=0.068883960397178, navstat=4, numsats=10, posmode=4, velmode=4, orimode=0,
    )


def sample_tracklets() -> list[Tracklet]:
    """A car ahead, a pedestrian from frame 1, a cyclist cut by the image's left edge, and a
    sitting person marked out of the image in frame 0."""
    return [
        Tracklet("Car", h=1.5, w=1.6, l=3.9, first_frame=0,
                 poses=np.array([[10.0 + i, 0.5, -1.73, 0.0, 0.0, 0.1] for i in range(3)]),
                 occlusion=np.array([0, 1, 2]), truncation=np.array([0, 0, 0])),
        Tracklet("Pedestrian", h=1.75, w=0.6, l=0.8, first_frame=1,
                 poses=np.array([[8.0, -2.0, -1.73, 0.0, 0.0, -1.2]] * 2),
                 occlusion=np.array([-1, 0]), truncation=np.array([0, 0])),
        Tracklet("Cyclist", h=1.7, w=0.6, l=1.8, first_frame=0,
                 poses=np.array([[6.0, 4.4, -1.73, 0.0, 0.0, 0.0]] * 3),
                 occlusion=np.zeros(3), truncation=np.ones(3)),
        Tracklet("Person (sitting)", h=1.2, w=0.6, l=0.8, first_frame=0,
                 poses=np.array([[7.0, 0.0, -1.73, 0.0, 0.0, 0.0]] * 2),
                 occlusion=np.zeros(2), truncation=np.array([2, 0])),
    ]


@dataclass
class SyntheticDrive:
    """What was written, to compare the readers against."""

    drive_dir: Path
    images: list[np.ndarray]
    points: list[np.ndarray]
    oxts: list[OxtsPacket]
    image_stamps_ns: list[int]
    velodyne_stamps_ns: list[int]
    calib: RawCalib


def write_synthetic_drive(root: Path, num_frames: int = 3, drive: int = 5,
                          with_tracklets: bool = True, seed: int = 0) -> SyntheticDrive:
    """Write a small drive with random images and points through ``RawDriveWriter``."""
    rng = np.random.default_rng(seed)
    calib = kitti_raw_calib()
    images, points, packets, image_ns, velo_ns = [], [], [], [], []
    with RawDriveWriter(root, DATE, drive) as writer:
        writer.write_calib(calib)
        for index in range(num_frames):
            images.append(rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8))
            xyz = rng.uniform([2.0, -20.0, -2.0], [50.0, 20.0, 1.0], size=(300 + index, 3))
            reflectance = rng.uniform(0.0, 1.0, size=(len(xyz), 1))
            points.append(np.hstack([xyz, reflectance]).astype(np.float32))
            packets.append(oxts_packet(index))
            image_ns.append(FIRST_STAMP_NS + index * FRAME_PERIOD_NS)
            velo_ns.append(image_ns[-1] + VELO_OFFSET_NS)
            writer.add_frame(images[-1], points[-1], packets[-1], image_ns[-1], velo_ns[-1])
        if with_tracklets:
            writer.write_tracklets(sample_tracklets())
    return SyntheticDrive(writer.drive_dir, images, points, packets, image_ns, velo_ns, calib)

"""Smooth ego motion along the road and the OXTS (GPS/IMU) packets it produces.

The ego drives at constant speed along world x with a gentle lateral weave (hence a slight,
consistent yaw) while the body pitches and rolls a little on its suspension. OXTS values are the
IMU's (KITTI's real IMU -> LiDAR mounting), with positions turned into latitude/longitude by
inverting the Mercator projection the KITTI devkit uses, so tools that follow the devkit get the
simulated metres back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.kitti.oxts import OxtsPacket
from monotakd_ros.data.kitti.raw_calib import KITTI_T_VELO_FROM_IMU
from monotakd_ros.data.synth.generator import RIG_PITCH_DEG, RIG_ROLL_DEG
from monotakd_ros.data.synth.rig import RigPose, rotation_zyx

EARTH_RADIUS_M = 6378137.0  # the devkit's Mercator sphere
GRAVITY_MPS2 = 9.81
_DIFF_STEP_S = 1e-3  # central differences for velocities and rates


@dataclass(frozen=True)
class EgoMotion:
    """Parameters of one drive's ego trajectory (world frame, metres, seconds, radians)."""

    speed_mps: float
    lane_y_m: float
    weave_m: float  # amplitude of the lateral weave
    weave_period_s: float
    weave_phase: float
    pitch_rad: float  # mean attitude of the rig
    roll_rad: float
    bounce_rad: float  # amplitude of the suspension's pitch/roll motion
    bounce_phase: float
    lidar_height_m: float
    map_heading_rad: float  # bearing of world x, counter-clockwise from east
    origin_lat_deg: float
    origin_lon_deg: float

    def pose(self, time_s: float) -> RigPose:
        """LiDAR pose at ``time_s``."""
        omega = 2 * np.pi / self.weave_period_s
        y = self.lane_y_m + self.weave_m * np.sin(omega * time_s + self.weave_phase)
        dy_dt = self.weave_m * omega * np.cos(omega * time_s + self.weave_phase)
        wobble = self.bounce_rad * np.sin(2 * np.pi * 0.9 * time_s + self.bounce_phase)
        sway = self.bounce_rad * np.sin(2 * np.pi * 0.6 * time_s + 2 * self.bounce_phase)
        return RigPose(x_m=self.speed_mps * time_s, y_m=float(y),
                       z_m=self.lidar_height_m + 0.01 * wobble / max(self.bounce_rad, 1e-9),
                       yaw_rad=float(np.arctan2(dy_dt, self.speed_mps)),
                       pitch_rad=self.pitch_rad + float(wobble),
                       roll_rad=self.roll_rad + float(sway))


def sample_ego_motion(rng: np.random.Generator, speed_mps: float, lane_y_m: float,
                      lidar_height_m: float) -> EgoMotion:
    """A drive's ego trajectory; the origin lies around Karlsruhe, where KITTI was recorded."""
    return EgoMotion(
        speed_mps=speed_mps, lane_y_m=lane_y_m, weave_m=float(rng.uniform(0.1, 0.35)),
        weave_period_s=float(rng.uniform(6.0, 14.0)),
        weave_phase=float(rng.uniform(0, 2 * np.pi)),
        pitch_rad=float(np.deg2rad(rng.normal(*RIG_PITCH_DEG))),
        roll_rad=float(np.deg2rad(rng.normal(*RIG_ROLL_DEG))),
        bounce_rad=float(np.deg2rad(rng.uniform(0.05, 0.2))),
        bounce_phase=float(rng.uniform(0, 2 * np.pi)), lidar_height_m=lidar_height_m,
        map_heading_rad=float(rng.uniform(-np.pi, np.pi)),
        origin_lat_deg=float(49.0 + rng.uniform(-0.03, 0.03)),
        origin_lon_deg=float(8.42 + rng.uniform(-0.05, 0.05)),
    )


def _T_world_from_imu(pose: RigPose) -> np.ndarray:
    """(4, 4) pose of the IMU in the world, through KITTI's IMU -> LiDAR mounting."""
    T_velo_from_imu = np.eye(4)
    T_velo_from_imu[:3] = KITTI_T_VELO_FROM_IMU
    return pose.T_world_from_lidar @ T_velo_from_imu


def euler_zyx(R: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) with R = Rz(yaw) Ry(pitch) Rx(roll)."""
    pitch = float(np.arcsin(np.clip(-R[2, 0], -1.0, 1.0)))
    return float(np.arctan2(R[1, 0], R[0, 0])), pitch, float(np.arctan2(R[2, 1], R[2, 2]))


def _lat_lon(motion: EgoMotion, east_m: float, north_m: float) -> tuple[float, float]:
    """Invert the devkit's Mercator projection around the drive's origin."""
    scale = np.cos(np.deg2rad(motion.origin_lat_deg))
    mx0 = scale * np.deg2rad(motion.origin_lon_deg) * EARTH_RADIUS_M
    my0 = scale * EARTH_RADIUS_M * np.log(np.tan(np.deg2rad(90.0 + motion.origin_lat_deg) / 2))
    lon = np.rad2deg((mx0 + east_m) / (scale * EARTH_RADIUS_M))
    lat = np.rad2deg(2.0 * np.arctan(np.exp((my0 + north_m) / (scale * EARTH_RADIUS_M)))
                     - np.pi / 2)
    return float(lat), float(lon)


def oxts_packet(motion: EgoMotion, time_s: float, rng: np.random.Generator) -> OxtsPacket:
    """The OXTS reading of the IMU at ``time_s``."""
    h = _DIFF_STEP_S
    T0, T1, T2 = (_T_world_from_imu(motion.pose(time_s + d)) for d in (-h, 0.0, h))
    position = T1[:3, 3]
    velocity = (T2[:3, 3] - T0[:3, 3]) / (2 * h)  # world
    accel = (T2[:3, 3] - 2 * position + T0[:3, 3]) / h**2
    accel_meas = accel + np.array([0.0, 0.0, GRAVITY_MPS2])  # accelerometers feel gravity
    # Angular rate from the rotation change: skew(w) ~ R^T dR/dt, in the IMU frame.
    d_rot = T1[:3, :3].T @ (T2[:3, :3] - T0[:3, :3]) / (2 * h)
    rate_imu = np.array([d_rot[2, 1], d_rot[0, 2], d_rot[1, 0]])
    R_world_from_imu = T1[:3, :3]
    yaw, pitch, roll = euler_zyx(R_world_from_imu)
    # The vehicle frame (forward, left, up) is the IMU frame without pitch and roll.
    R_world_from_vehicle = rotation_zyx(yaw, 0.0, 0.0)
    heading = motion.map_heading_rad
    R_enu = rotation_zyx(heading, 0.0, 0.0)
    east, north, _ = R_enu @ position
    v_east, v_north, v_up = R_enu @ velocity
    lat, lon = _lat_lon(motion, float(east), float(north))
    v_fl = R_world_from_vehicle.T @ velocity
    a_imu = R_world_from_imu.T @ accel_meas
    a_fl = R_world_from_vehicle.T @ accel_meas
    rate_fl = R_world_from_vehicle.T @ (R_world_from_imu @ rate_imu)
    noise = rng.normal(0.0, 1.0, 6)
    return OxtsPacket(
        lat=lat, lon=lon, alt=float(112.0 + position[2]), roll=roll, pitch=pitch,
        yaw=float((yaw + heading + np.pi) % (2 * np.pi) - np.pi),
        vn=float(v_north), ve=float(v_east), vf=float(v_fl[0]), vl=float(v_fl[1]),
        vu=float(v_up), ax=float(a_imu[0] + 0.02 * noise[0]), ay=float(a_imu[1] + 0.02 * noise[1]),
        az=float(a_imu[2] + 0.02 * noise[2]), af=float(a_fl[0]), al=float(a_fl[1]),
        au=float(a_fl[2]), wx=float(rate_imu[0] + 1e-4 * noise[3]),
        wy=float(rate_imu[1] + 1e-4 * noise[4]), wz=float(rate_imu[2] + 1e-4 * noise[5]),
        wf=float(rate_fl[0]), wl=float(rate_fl[1]), wu=float(rate_fl[2]),
        pos_accuracy=float(rng.uniform(0.3, 0.6)), vel_accuracy=float(rng.uniform(0.03, 0.08)),
        navstat=4, numsats=int(rng.integers(8, 12)), posmode=5, velmode=5, orimode=6,
    )

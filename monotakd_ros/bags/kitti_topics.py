"""Topic and frame names of the kitti2bag layout: plain constants, importable without rosbags.

The detector node takes its default topics from here; ``kitti_layout`` adds the rig's QoS and
static transforms for the bag readers and writers.
"""

from __future__ import annotations

IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
CAMERA_INFO_TOPIC = "/kitti/camera_color_left/camera_info"
POINT_CLOUD_TOPIC = "/kitti/velo/pointcloud"
IMU_TOPIC = "/kitti/oxts/imu"
GPS_FIX_TOPIC = "/kitti/oxts/gps/fix"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"
GROUND_TRUTH_TOPIC = "/kitti/ground_truth/detections"

CAMERA_FRAME = "camera_color_left"
VELO_FRAME = "velo_link"
IMU_FRAME = "imu_link"
BASE_FRAME = "base_link"
WORLD_FRAME = "world"

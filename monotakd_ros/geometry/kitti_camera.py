"""KITTI's real left colour camera: the camera every shipped checkpoint was trained with."""

from __future__ import annotations

import numpy as np

# KITTI object set training/calib/000000.txt (2011_09_26 drives), design notes section 3.
KITTI_P2 = np.array([
    [7.215377e02, 0.0, 6.095593e02, 4.485728e01],
    [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
    [0.0, 0.0, 1.0, 2.745884e-03],
])
KITTI_R0_RECT = np.array([
    [9.999239e-01, 9.837760e-03, -7.445048e-03],
    [-9.869795e-03, 9.999421e-01, -4.278459e-03],
    [7.402527e-03, 4.351614e-03, 9.999631e-01],
])
KITTI_TR_VELO_TO_CAM = np.array([
    [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
    [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
    [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01],
])
KITTI_IMAGE_HW = (375, 1242)

"""Checks of a CameraInfo against its image, giving the (3, 4) projection P the model needs."""

from __future__ import annotations

from typing import Any

import numpy as np

from monotakd_ros.errors import CameraInfoError


def projection_from_camera_info(info: Any, image_hw: tuple[int, int]) -> np.ndarray:
    """CameraInfo ``p`` as a (3, 4) float64 array, checked against an (H, W) image.

    P (not K and D) is used: it describes the rectified image the camera driver publishes, and
    for KITTI it carries the stereo baseline term Tx. Width/height 0 means "not given".
    """
    P = np.asarray(info.p, dtype=np.float64)
    if P.size != 12:
        raise CameraInfoError(f"CameraInfo.p has {P.size} values, expected 12")
    P = P.reshape(3, 4)
    if not np.all(np.isfinite(P)):
        raise CameraInfoError(f"CameraInfo.p holds non-finite values: {P.ravel().tolist()}")
    if not np.any(P):
        raise CameraInfoError("CameraInfo.p is all zeros (camera not calibrated?); the "
                              "detector needs the projection matrix P")
    if P[0, 0] == 0.0 or P[1, 1] == 0.0 or P[2, 2] == 0.0:
        raise CameraInfoError(f"CameraInfo.p has a zero focal length or P[2, 2] = 0: "
                              f"{P.ravel().tolist()}")
    height, width = image_hw
    info_w, info_h = int(info.width), int(info.height)
    if (info_w, info_h) != (0, 0) and (info_w, info_h) != (width, height):
        raise CameraInfoError(f"CameraInfo is {info_w}x{info_h} but the image is "
                              f"{width}x{height}; both must describe the same image")
    return P


def distortion_warning(info: Any) -> str | None:
    """A warning when D != 0 while P looks like K: the image is probably not rectified.

    A rectifying driver publishes the distortion of the raw camera (D) next to the P of the
    rectified image; P then differs from K (new focal length or principal point). When P's
    left 3x3 equals K and D is non-zero, the image is most likely the raw, distorted one.
    """
    D = np.asarray(info.d, dtype=np.float64).ravel()
    K = np.asarray(info.k, dtype=np.float64).ravel()
    if D.size == 0 or not np.any(D) or K.size != 9 or not np.any(K):
        return None
    P = np.asarray(info.p, dtype=np.float64).reshape(3, 4)
    if not np.allclose(P[:, :3], K.reshape(3, 3), rtol=1e-6, atol=1e-9):
        return None
    return (f"CameraInfo has distortion D = {np.round(D, 4).tolist()} "
            f"({info.distortion_model or 'no model named'}) and P equal to K: the image "
            "looks unrectified; the detector assumes a rectified image (publish image_rect, "
            "e.g. through image_proc), so boxes will be off towards the image edges")

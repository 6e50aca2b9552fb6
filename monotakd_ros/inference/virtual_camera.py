"""The virtual camera: any rectified image and its P mapped onto the camera the model learnt.

A monocular depth prior is tied to the focal length it was trained with, and the network only
ever saw the road at the rows and columns the training camera put it. So the detector's input
step resamples the user's image so that its focal length equals the training camera's (per
axis), pastes it so that its principal point (or, for a level camera, its horizon row) lands
where the training camera's is, and crops or pads to the network input. All three steps are a
scale and an integer shift in the image plane, ``P_input = A @ P_user``, so the network's boxes,
lifted through ``P_input``, come back in the frame ``P_user`` is expressed in: the user's camera.

For a KITTI-shaped image (1242 x 375, fx 721.5) the mapping is exactly the training step
``data.batch.prepare_image`` (fit to width, keep the top rows), so results there do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.batch import InputSpec, placed_projection, resized_hw
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.kitti_camera import KITTI_IMAGE_HW, KITTI_P2

PLACEMENTS = ("principal_point", "horizon")
SCALE_RANGE = (0.2, 2.0)  # outside: the image is shrunk or blown up more than is sensible
MIN_SEEN_FRACTION = 0.5  # below: most of the user's image is cropped away
MAX_PADDED_FRACTION = 0.75  # above: the image fills little of the model's view


@dataclass(frozen=True)
class TrainingCamera:
    """The camera a checkpoint was trained with, as the network saw it (input resolution)."""

    P_input: np.ndarray  # (3, 4) projection at the network input
    input_hw: tuple[int, int]  # (H, W) of the network input

    @property
    def focal_xy_px(self) -> tuple[float, float]:
        """(fx, fy) at the network input."""
        return float(self.P_input[0, 0]), float(self.P_input[1, 1])

    @property
    def principal_point_px(self) -> tuple[float, float]:
        """(cx, cy) at the network input."""
        return float(self.P_input[0, 2]), float(self.P_input[1, 2])


def kitti_training_camera(spec: InputSpec) -> TrainingCamera:
    """KITTI's P2 (1242 x 375, fx 721.5; the synthetic world's camera) after ``prepare_image``.

    Every shipped checkpoint was trained on images from this camera (synthetic KITTI), prepared
    by fitting the width to the network input and keeping the top rows.
    """
    new_hw = resized_hw(KITTI_IMAGE_HW, spec)
    P_input = placed_projection(KITTI_P2, KITTI_IMAGE_HW, new_hw, (0, 0))
    return TrainingCamera(P_input=P_input, input_hw=tuple(spec.input_hw))


@dataclass(frozen=True)
class CameraMapping:
    """What the virtual camera does to one camera's images (user image -> network input)."""

    user_hw: tuple[int, int]  # (rows, cols) of the user's image
    resized_hw: tuple[int, int]  # (rows, cols) after resampling to the training focal length
    offset_yx: tuple[int, int]  # top-left of the resized image on the input canvas
    input_hw: tuple[int, int]  # (H, W) of the network input
    P_input: np.ndarray  # (3, 4) the user's P carried through resample and shift

    @property
    def scale_xy(self) -> tuple[float, float]:
        """(sx, sy) of the resample, input pixels per user pixel."""
        return (self.resized_hw[1] / self.user_hw[1], self.resized_hw[0] / self.user_hw[0])

    @property
    def visible_window(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the resized image that lands on the canvas (exclusive)."""
        top, left = self.offset_yx
        height, width = self.input_hw
        return (max(0, -top), max(0, -left), max(0, min(self.resized_hw[0], height - top)),
                max(0, min(self.resized_hw[1], width - left)))

    @property
    def crop_window_px(self) -> tuple[float, float, float, float]:
        """(u0, v0, u1, v1) pixel edges of the user's image the network sees."""
        top, left, bottom, right = self.visible_window
        sx, sy = self.scale_xy
        if bottom <= top or right <= left:
            return (0.0, 0.0, 0.0, 0.0)
        return (left / sx, top / sy, right / sx, bottom / sy)

    @property
    def seen_fraction(self) -> float:
        """Share of the user's image area that reaches the network."""
        top, left, bottom, right = self.visible_window
        visible = max(0, bottom - top) * max(0, right - left)
        return visible / (self.resized_hw[0] * self.resized_hw[1])

    @property
    def padded_fraction(self) -> float:
        """Share of the network input that is padding (no user pixel behind it)."""
        top, left, bottom, right = self.visible_window
        visible = max(0, bottom - top) * max(0, right - left)
        return 1.0 - visible / (self.input_hw[0] * self.input_hw[1])

    def summary(self) -> str:
        """One line: scale, crop window, padded area and the share of the image seen."""
        sx, sy = self.scale_xy
        u0, v0, u1, v1 = self.crop_window_px
        return (f"virtual camera: {self.user_hw[1]}x{self.user_hw[0]} image resampled by "
                f"sx={sx:.4f} sy={sy:.4f} to {self.resized_hw[1]}x{self.resized_hw[0]}, "
                f"placed at (x={self.offset_yx[1]}, y={self.offset_yx[0]}) on the "
                f"{self.input_hw[1]}x{self.input_hw[0]} input; the model sees user pixels "
                f"u {u0:.0f}-{u1:.0f}, v {v0:.0f}-{v1:.0f} ({100 * self.seen_fraction:.0f} % "
                f"of the image), {100 * self.padded_fraction:.0f} % of the input is padding")

    def warnings(self) -> list[str]:
        """Problems worth a warning, each with its numbers (empty when the mapping is sane)."""
        found = []
        sx, sy = self.scale_xy
        low, high = SCALE_RANGE
        if not (low <= sx <= high and low <= sy <= high):
            found.append(f"extreme resample sx={sx:.3f} sy={sy:.3f} (sane range {low}-{high}): "
                         "the camera's focal length is far from the training camera's, so "
                         "detail is lost or invented")
        if self.seen_fraction < MIN_SEEN_FRACTION:
            found.append(f"the model sees only {100 * self.seen_fraction:.1f} % of the image "
                         f"(user pixels {_window_text(self.crop_window_px)}); objects outside "
                         "are never detected")
        if self.padded_fraction > MAX_PADDED_FRACTION:
            found.append(f"P maps the image onto only {100 * (1 - self.padded_fraction):.1f} % "
                         f"of the model's {self.input_hw[1]}x{self.input_hw[0]} view (offset "
                         f"x={self.offset_yx[1]}, y={self.offset_yx[0]}, resized "
                         f"{self.resized_hw[1]}x{self.resized_hw[0]}); check P (cx, cy, fx)")
        return found


def _window_text(window: tuple[float, float, float, float]) -> str:
    u0, v0, u1, v1 = window
    return f"u {u0:.0f}-{u1:.0f}, v {v0:.0f}-{v1:.0f}"


class VirtualCamera:
    """Maps (image size, P) of any rectified camera onto a training camera (see module doc)."""

    def __init__(self, target: TrainingCamera, placement: str = "principal_point",
                 horizon_row_px: float | None = None) -> None:
        if placement not in PLACEMENTS:
            raise ConfigError(f"virtual_camera_placement: must be one of {list(PLACEMENTS)}, "
                              f"got {placement!r}")
        if horizon_row_px is not None and not math.isfinite(horizon_row_px):
            raise ConfigError(f"horizon_row_px: must be finite, got {horizon_row_px!r}")
        self.target = target
        self.placement = placement
        self.horizon_row_px = horizon_row_px

    def mapping(self, P: np.ndarray, image_hw: tuple[int, int]) -> CameraMapping:
        """The resample and placement of images of size ``image_hw`` whose projection is P."""
        P = np.asarray(P, dtype=np.float64)
        user_hw = (int(image_hw[0]), int(image_hw[1]))
        fx_t, fy_t = self.target.focal_xy_px
        scale_x, scale_y = fx_t / abs(P[0, 0]), fy_t / abs(P[1, 1])
        new_hw = (max(1, round(user_hw[0] * scale_y)), max(1, round(user_hw[1] * scale_x)))
        # After rounding the size, the exact scale is new / old; anchors use it.
        sx, sy = new_hw[1] / user_hw[1], new_hw[0] / user_hw[0]
        cx_t, cy_t = self.target.principal_point_px
        cx, cy = P[0, 2] / P[2, 2], P[1, 2] / P[2, 2]
        if self.placement == "principal_point":
            left = round(cx_t - (sx * (cx + 0.5) - 0.5))
        else:  # centre the image's columns on the input: keeps the most of its width
            left = round((self.target.input_hw[1] - new_hw[1]) / 2)
        # A level camera's horizon is the principal row; the training camera is level.
        horizon_v = cy if self.placement == "principal_point" or self.horizon_row_px is None \
            else self.horizon_row_px
        top = round(cy_t - (sy * (horizon_v + 0.5) - 0.5))
        P_input = placed_projection(P, user_hw, new_hw, (top, left))
        return CameraMapping(user_hw=user_hw, resized_hw=new_hw, offset_yx=(top, left),
                             input_hw=tuple(self.target.input_hw), P_input=P_input)
